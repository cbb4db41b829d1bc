// biome-ignore-all lint/suspicious/noTemplateCurlyInString: iPXE scripts spell settings ${like-this}
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type FetchedImage, type IpxeHost, runIpxe } from './ipxe-script.ts';
import { IpxeSettings, ipxeUrl, type PxeIdentity } from './ipxe-settings.ts';

const identity: PxeIdentity = {
  mac: '52:54:00:12:34:56',
  uuid: '5a5a0000-0000-4000-8000-525400123456',
  serial: 'SIM123456',
  asset: 'rack-7',
  manufacturer: 'QEMU',
  product: 'Standard PC (i440FX + PIIX, 1996)',
};

/** Serves scripts and images from a table by URL; records what was fetched and printed, and how long it slept. */
function site(pages: Record<string, string | number>) {
  const fetched: string[] = [];
  const printed: string[] = [];
  const slept: number[] = [];
  const host: IpxeHost = {
    async fetch(url): Promise<FetchedImage> {
      fetched.push(url.href);
      const page = pages[url.href];
      if (page === undefined) throw new Error('HTTP 404');
      return typeof page === 'number' ? { kind: 'binary', bytes: page } : { kind: 'script', text: page };
    },
    async sleep(ms) {
      slept.push(ms);
    },
    echo: (text) => void printed.push(text),
  };
  return { host, fetched, printed, slept };
}

const base = 'http://boot.test';
const query =
  'mac=${net0/mac}&uuid=${uuid}&serial=${serial}&asset=${asset}&manufacturer=${manufacturer}&product=${product:uristring}&buildarch=${buildarch}&platform=${platform}';
const chainedUrl =
  'http://boot.test/ipxe?mac=52%3A54%3A00%3A12%3A34%3A56&uuid=5a5a0000-0000-4000-8000-525400123456&serial=SIM123456&asset=rack-7' +
  '&manufacturer=QEMU&product=Standard%20PC%20(i440FX%20+%20PIIX,%201996)&buildarch=x86_64&platform=pcbios';

describe('iPXE script interpreter', () => {
  test('boot.ipxe chains /ipxe with the machine identity, the MAC URL-encoded as iPXE sends it', async () => {
    const { host, fetched } = site({
      [`${base}/boot.ipxe`]: `#!ipxe\nchain /ipxe?${query}\n`,
      [chainedUrl]: '#!ipxe\nexit\n',
    });
    const outcome = await runIpxe(`${base}/boot.ipxe`, identity, host);
    assert.deepEqual(fetched, [`${base}/boot.ipxe`, chainedUrl]);
    assert.deepEqual(outcome, { kind: 'exit', code: 0, reason: 'exit command' });
  });

  test('a setting with spaces splits the command line, as in iPXE: ${product} ends the URL at its first space', async () => {
    const { host, fetched } = site({
      [`${base}/boot.ipxe`]: '#!ipxe\nchain /ipxe?serial=${serial}&product=${product}&platform=${platform}\n',
      [`${base}/ipxe?serial=SIM123456&product=Standard`]: '#!ipxe\nexit\n',
    });
    await runIpxe(`${base}/boot.ipxe`, identity, host);
    assert.deepEqual(fetched, [`${base}/boot.ipxe`, `${base}/ipxe?serial=SIM123456&product=Standard`]);
  });

  test('kernel, initrd and boot: the machine boots the kernel with its arguments and initrds', async () => {
    const { host } = site({
      [`${base}/boot.ipxe`]: [
        '#!ipxe',
        'kernel http://boot.test/k/vmlinuz initrd=initrd.img console=ttyS0 mac=${net0/mac:hexhyp}',
        'initrd --name initrd.img /k/initrd.img',
        'boot',
      ].join('\n'),
      [`${base}/k/vmlinuz`]: 8_000_000,
      [`${base}/k/initrd.img`]: 30_000_000,
    });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, host), {
      kind: 'booted',
      image: `${base}/k/vmlinuz`,
      cmdline: 'initrd=initrd.img console=ttyS0 mac=52-54-00-12-34-56',
      initrds: [`${base}/k/initrd.img`],
    });
  });

  test('chain to a binary image boots it with the rest of the line as its command line', async () => {
    const { host } = site({ [`${base}/boot.ipxe`]: '#!ipxe\nchain --autofree --replace vmlinuz quiet\n', [`${base}/vmlinuz`]: 100 });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, host), {
      kind: 'booted',
      image: `${base}/vmlinuz`,
      cmdline: 'quiet',
      initrds: [],
    });
  });

  test('a failed download stops the script with the error, unless || catches it', async () => {
    const failing = site({ [`${base}/boot.ipxe`]: '#!ipxe\nchain /missing.ipxe\necho never\n' });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, failing.host), {
      kind: 'error',
      error: `chain ${base}/missing.ipxe: HTTP 404`,
    });
    assert.deepEqual(failing.printed, []);
    const caught = site({
      [`${base}/boot.ipxe`]:
        '#!ipxe\nchain /missing.ipxe || goto fallback\necho skipped\n:fallback\necho falling back\nsanboot --no-describe --drive 0x80\n',
    });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, caught.host), { kind: 'sanboot', args: '--no-describe --drive 0x80' });
    assert.deepEqual(caught.printed, ['falling back']);
  });

  test('set, isset, iseq, goto and labels steer the script', async () => {
    const { host, printed } = site({
      [`${base}/boot.ipxe`]: [
        '#!ipxe',
        'isset ${serial} || goto noserial',
        'set who ${manufacturer}/${serial}',
        'echo machine ${who}',
        'iseq ${platform} efi && goto efi || goto bios',
        ':efi',
        'echo efi',
        'exit 1',
        ':bios',
        'echo bios ${buildarch} ${unset-setting}end',
        'isset ${asset} && echo has asset',
        'exit',
        ':noserial',
        'echo no serial',
      ].join('\n'),
    });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, host), { kind: 'exit', code: 0, reason: 'exit command' });
    assert.deepEqual(printed, ['machine QEMU/SIM123456', 'bios x86_64 end', 'has asset']);
  });

  test('exit in a chained script returns to the script that chained it; a non-zero exit fails the chain', async () => {
    const { host, printed } = site({
      [`${base}/boot.ipxe`]: '#!ipxe\nchain inner.ipxe\necho back\nchain failing.ipxe || echo caught\n',
      [`${base}/inner.ipxe`]: '#!ipxe\nexit\necho never\n',
      [`${base}/failing.ipxe`]: '#!ipxe\nexit 3\n',
    });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, host), { kind: 'exit', code: 0, reason: 'exit command' });
    assert.deepEqual(printed, ['back', 'caught']);
  });

  test('a script that ends without booting gives the machine back to the firmware', async () => {
    const { host } = site({ [`${base}/boot.ipxe`]: '#!ipxe\necho nothing to do\n' });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, host), { kind: 'exit', code: 0, reason: 'end of script' });
  });

  test('text without #!ipxe is not run', async () => {
    const { host } = site({ [`${base}/boot.ipxe`]: 'chain /x\n' });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, host), {
      kind: 'error',
      error: `${base}/boot.ipxe: not an iPXE script (no #!ipxe line)`,
    });
  });

  test('a goto loop ends at the command limit', async () => {
    const { host } = site({ [`${base}/boot.ipxe`]: '#!ipxe\n:top\nsleep 1\ngoto top\n' });
    const outcome = await runIpxe(`${base}/boot.ipxe`, identity, host, { maxCommands: 50 });
    assert.deepEqual(outcome, { kind: 'error', error: 'more than 50 commands run: a loop?' });
  });

  test('menu, item and choose take the default; a prompt with a timeout runs out; sleep waits', async () => {
    const { host, slept, printed } = site({
      [`${base}/boot.ipxe`]: [
        '#!ipxe',
        'prompt --key 0x02 --timeout 2000 Press Ctrl-B for the shell || echo no key',
        'menu Boot menu',
        'item --key l local Boot from disk',
        'item install Install',
        'choose --default install --timeout 5000 target',
        'goto ${target}',
        ':local',
        'exit',
        ':install',
        'sleep 3',
        'echo installing',
        'reboot',
      ].join('\n'),
    });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, host), { kind: 'reboot' });
    assert.deepEqual(printed, ['no key', 'installing']);
    assert.deepEqual(slept, [2000, 3000]);
  });

  test('a command iPXE does not have fails; shell waits for a person', async () => {
    const unknown = site({ [`${base}/boot.ipxe`]: '#!ipxe\nfrobnicate now\n' });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, unknown.host), { kind: 'error', error: 'frobnicate: command not found' });
    const shell = site({ [`${base}/boot.ipxe`]: '#!ipxe\ndhcp\nshell\n' });
    assert.deepEqual(await runIpxe(`${base}/boot.ipxe`, identity, shell.host), {
      kind: 'error',
      error: 'shell: waits for a person at the console',
    });
  });

  test('chained scripts nest at most 8 deep', async () => {
    const { host } = site({ [`${base}/boot.ipxe`]: '#!ipxe\nchain boot.ipxe\n' });
    const outcome = await runIpxe(`${base}/boot.ipxe`, identity, host);
    assert.deepEqual(outcome, { kind: 'error', error: `${base}/boot.ipxe: scripts chained more than 8 deep` });
  });
});

describe('iPXE settings and URLs', () => {
  test('settings expand with types; unset ones expand to nothing; smbios/ and netX/ spellings work', () => {
    const settings = new IpxeSettings(identity);
    assert.equal(
      settings.expand('${net0/mac} ${netX/mac:hexraw} ${mac:hexhyp} ${smbios/serial} [${nothing}]'),
      '52:54:00:12:34:56 525400123456 52-54-00-12-34-56 SIM123456 []',
    );
    assert.equal(settings.expand('${product:uristring}'), 'Standard%20PC%20(i440FX%20+%20PIIX,%201996)');
    assert.equal(settings.expand('${net0/mac:uristring}'), '52%3A54%3A00%3A12%3A34%3A56');
    settings.set('serial', 'changed');
    assert.equal(settings.expand('${serial}'), 'changed');
  });

  test('a relative URL resolves against the script; the query is escaped as iPXE formats it', () => {
    assert.equal(
      ipxeUrl('/ipxe?mac=52:54:00:00:00:01&x=a/b@c', 'http://h:8080/boot.ipxe').href,
      'http://h:8080/ipxe?mac=52%3A54%3A00%3A00%3A00%3A01&x=a/b%40c',
    );
    assert.equal(ipxeUrl('kernel', 'http://h/dir/boot.ipxe').href, 'http://h/dir/kernel');
    assert.equal(ipxeUrl('http://other/x?already=%3A', null).href, 'http://other/x?already=%3A');
  });
});
