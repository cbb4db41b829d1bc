import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bootFiles, emptyBootConfig, parseConfigTxt } from './config-txt.ts';

describe('config.txt', () => {
  test('an empty config.txt gives each model its default kernel and device tree', () => {
    assert.deepEqual(bootFiles(emptyBootConfig(), 'pi4'), {
      kernel: 'kernel8.img',
      kernelFallback: null,
      initramfs: [],
      deviceTree: 'bcm2711-rpi-4-b.dtb',
      overlayMap: 'overlays/overlay_map.dtb',
      overlays: [],
      cmdline: 'cmdline.txt',
    });
    assert.deepEqual(bootFiles(emptyBootConfig(), 'pi5'), {
      kernel: 'kernel_2712.img',
      kernelFallback: 'kernel8.img',
      initramfs: [],
      deviceTree: 'bcm2712-rpi-5-b.dtb',
      overlayMap: 'overlays/overlay_map.dtb',
      overlays: [],
      cmdline: 'cmdline.txt',
    });
  });

  test('kernel, initramfs, device_tree and dtoverlay lines choose the files, in order', () => {
    const text = [
      '# comment',
      'kernel=vmlinuz',
      'initramfs initrd.img,extra.img followkernel',
      'device_tree=custom.dtb',
      'dtoverlay=vc4-kms-v3d',
      'dtoverlay=dwc2,dr_mode=host',
      'dtparam=audio=on',
      'dtoverlay=',
    ].join('\n');
    assert.deepEqual(bootFiles(parseConfigTxt(text, 'pi4', '1a2b3c4d'), 'pi4'), {
      kernel: 'vmlinuz',
      kernelFallback: null,
      initramfs: [
        { name: 'initrd.img', optional: false },
        { name: 'extra.img', optional: false },
      ],
      deviceTree: 'custom.dtb',
      overlayMap: 'overlays/overlay_map.dtb',
      overlays: ['overlays/vc4-kms-v3d.dtbo', 'overlays/dwc2.dtbo'],
      cmdline: 'cmdline.txt',
    });
  });

  test('sections for another model, [none] and another serial are skipped; [all] ends them', () => {
    const text = [
      '[pi5]',
      'kernel=five.img',
      '[pi4]',
      'kernel=four.img',
      '[0x1a2b3c4d]',
      'dtoverlay=mine',
      '[0xffffffff]',
      'dtoverlay=theirs',
      '[none]',
      'device_tree=never.dtb',
      '[all]',
      'dtoverlay=everyone',
      '[cm4]',
      'kernel=cm4.img',
    ].join('\r\n');
    const pi4 = parseConfigTxt(text, 'pi4', '1a2b3c4d');
    assert.deepEqual([pi4.kernel, pi4.deviceTree, pi4.overlays], ['four.img', null, ['mine', 'everyone']]);
    const pi5 = parseConfigTxt(text, 'pi5', '00000001');
    assert.deepEqual([pi5.kernel, pi5.overlays], ['five.img', ['everyone']]);
  });

  test('auto_initramfs adds the initramfs that matches a default kernel, as optional', () => {
    const config = parseConfigTxt('auto_initramfs=1\n', 'pi5', '00000001');
    assert.deepEqual(bootFiles(config, 'pi5').initramfs, [{ name: 'initramfs_2712', optional: true }]);
    assert.deepEqual(bootFiles(parseConfigTxt('auto_initramfs=1\nkernel=vmlinuz\n', 'pi4', '00000001'), 'pi4').initramfs, []);
  });

  test('os_prefix goes before every OS file; arm_64bit=0 picks the 32-bit Pi 4 kernel; device_tree= with no value loads none', () => {
    const config = parseConfigTxt('os_prefix=next/\narm_64bit=0\ndevice_tree=\ndtoverlay=x\ncmdline=args.txt\n', 'pi4', '00000001');
    assert.deepEqual(bootFiles(config, 'pi4'), {
      kernel: 'next/kernel7l.img',
      kernelFallback: null,
      initramfs: [],
      deviceTree: null,
      overlayMap: 'next/overlays/overlay_map.dtb',
      overlays: ['next/overlays/x.dtbo'],
      cmdline: 'next/args.txt',
    });
  });

  test('include lines are collected for the firmware to read', () => {
    assert.deepEqual(parseConfigTxt('include syscfg.txt\ninclude usercfg.txt\n', 'pi4', '00000001').includes, [
      'syscfg.txt',
      'usercfg.txt',
    ]);
  });
});
