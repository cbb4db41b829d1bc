import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { isSealed, Keyring, KeyringError, keyId, newMasterKey, sealedKeyId } from './keyring.ts';

describe('Keyring', () => {
  const key = randomBytes(32);
  const keyring = new Keyring([key]);

  test('seals a secret that opens under its own name only, and never shows it', () => {
    const sealed = keyring.seal('the session secret', 'jwt_secret');
    assert.ok(isSealed(sealed));
    assert.ok(!sealed.includes('session'));
    assert.equal(sealedKeyId(sealed), keyId(key));
    assert.equal(keyring.open(sealed, 'jwt_secret'), 'the session secret');
    assert.throws(() => keyring.open(sealed, 'boot_url_key'), /does not open with master key .*altered or belongs to another name/);
  });

  test('the same secret sealed twice looks different (a fresh nonce each time)', () => {
    assert.notEqual(keyring.seal('x', 'a'), keyring.seal('x', 'a'));
  });

  test('an altered value is refused', () => {
    const sealed = keyring.seal('secret', 'a');
    const parts = sealed.split(':');
    const ciphertext = Buffer.from(parts[4], 'base64url');
    ciphertext[0] ^= 1;
    parts[4] = ciphertext.toString('base64url');
    assert.throws(() => keyring.open(parts.join(':'), 'a'), KeyringError);
    assert.throws(() => keyring.open(`${sealed}:extra`, 'a'), KeyringError);
    assert.throws(() => keyring.open('plain text', 'a'), /not sealed/);
  });

  test('a value sealed with a key the keyring lacks names the key it needs', () => {
    const other = new Keyring([randomBytes(32)]);
    const sealed = other.seal('secret', 'a');
    assert.throws(
      () => keyring.open(sealed, 'a'),
      new RegExp(`sealed with master key ${other.currentId}, which this server does not have`),
    );
  });

  test('during a rotation the new key seals and both open; afterwards only the new one is kept', () => {
    const old = keyring.seal('secret', 'a');
    const next = randomBytes(32);
    const rotating = keyring.withCurrent(next);
    assert.equal(rotating.currentId, keyId(next));
    assert.deepEqual(rotating.ids, [keyId(next), keyId(key)]);
    assert.equal(rotating.open(old, 'a'), 'secret');
    const resealed = rotating.seal(rotating.open(old, 'a'), 'a');
    const after = rotating.currentOnly();
    assert.equal(after.open(resealed, 'a'), 'secret');
    assert.throws(() => after.open(old, 'a'), KeyringError);
  });

  test('parses keys in base64url, base64 and hex, separated by commas or lines; round-trips through serialize', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const parsed = Keyring.parse(`${a.toString('base64')},\n${b.toString('hex')}\n`, 'test');
    assert.deepEqual(parsed.ids, [keyId(a), keyId(b)]);
    assert.deepEqual(Keyring.parse(parsed.serialize(), 'file').ids, parsed.ids);
    assert.equal(Keyring.parse(newMasterKey(), 'new').ids.length, 1);
  });

  test('a bad key is an error that names where it came from and never quotes it', () => {
    for (const bad of ['short', randomBytes(16).toString('base64'), `${randomBytes(32).toString('hex')}zz`, '', ' , ']) {
      assert.throws(
        () => Keyring.parse(bad, 'MUSTER_MASTER_KEY'),
        (error: Error) =>
          error instanceof KeyringError &&
          error.message.startsWith('MUSTER_MASTER_KEY') &&
          (bad.trim().length < 3 || !error.message.includes(bad)),
      );
    }
  });
});
