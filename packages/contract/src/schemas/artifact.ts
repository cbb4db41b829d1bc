import { type Static, Type } from 'typebox';
import { PageQuery, Timestamp } from './common.ts';

const sha256Pattern = '^[0-9a-f]{64}$';
/** An artifact's address: the sha256 of its bytes, 64 lower-case hex digits. */
export const ArtifactSha256 = Type.String({ pattern: sha256Pattern, description: 'sha256 of the content, 64 lower-case hex digits' });

export const maxArtifactNameBytes = 255;

// A path segment: no slash, backslash or control character; "." and ".." are refused as whole segments.
const segment = String.raw`[^/\\\u0000-\u001f\u007f-\u009f]+`;
const nameRules =
  'a relative path such as ipxe.efi or registration/bzImage: no leading, trailing or doubled /, no . or .. segment, no backslash or control character, at most 255 bytes';

const artifactNameRegExp = new RegExp(String.raw`^(?!\.\.?(?:/|$))(?!.*/\.\.?(?:/|$))${segment}(?:/${segment})*$`, 'u');

/** Why `name` cannot be published (e.g. ipxe.efi, registration/bzImage), in words; null when it can. */
export function artifactNameProblem(name: string): string | null {
  if (!artifactNameRegExp.test(name)) {
    return `${JSON.stringify(name)} is not ${nameRules}`;
  }
  if (new TextEncoder().encode(name).length > maxArtifactNameBytes)
    return `${JSON.stringify(name)} is longer than ${maxArtifactNameBytes} bytes`;
  return null;
}

// Checked by artifactNameProblem rather than a pattern, so that a refusal says what is wrong in words.
export const ArtifactName = Type.String({
  minLength: 1,
  maxLength: maxArtifactNameBytes,
  description: `Published name: ${nameRules}`,
});

const FileName = Type.String({
  minLength: 1,
  maxLength: maxArtifactNameBytes,
  pattern: String.raw`^[^\u0000-\u001f\u007f-\u009f]+$`,
  description: 'The file name it was uploaded as; kept for people, never used to address it',
});

export const Artifact = Type.Object({
  sha256: ArtifactSha256,
  size: Type.Integer({ minimum: 0, description: 'Bytes' }),
  name: Type.String({ description: 'The file name it was uploaded as' }),
  names: Type.Array(Type.String(), { description: 'Published names that point at it' }),
  created_by: Type.String(),
  created_at: Timestamp,
});
export type Artifact = Static<typeof Artifact>;

/** A published name and the artifact it points at. */
export const ArtifactNameEntry = Type.Object({
  name: Type.String(),
  sha256: ArtifactSha256,
  size: Type.Integer({ minimum: 0 }),
  updated_at: Timestamp,
});
export type ArtifactNameEntry = Static<typeof ArtifactNameEntry>;

export const ArtifactUploadQuery = Type.Object(
  {
    name: Type.Optional(FileName),
    sha256: Type.Optional(
      Type.String({ pattern: sha256Pattern, description: 'The sha256 expected: other content is refused and nothing is kept' }),
    ),
    publish: Type.Optional(Type.String({ minLength: 1, maxLength: maxArtifactNameBytes, description: 'Also publish it under this name' })),
  },
  { additionalProperties: false },
);
export type ArtifactUploadQuery = Static<typeof ArtifactUploadQuery>;

export const ArtifactListQuery = Type.Object(PageQuery, { additionalProperties: false });

export const ArtifactParam = Type.Object({ sha256: ArtifactSha256 });
export const ArtifactNameParam = Type.Object({ name: ArtifactName });

export const ArtifactPublish = Type.Object({ sha256: ArtifactSha256 }, { additionalProperties: false });
export type ArtifactPublish = Static<typeof ArtifactPublish>;
