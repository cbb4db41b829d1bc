// Loaded into every test file's process (`node --import`): a file still running after MUSTER_TEST_FILE_TIMEOUT
// seconds is ended with its name, so a hang outside any test (a module-level wait, a stuck child process) cannot
// stall the run. The runner's own process, which has no NODE_TEST_CONTEXT, is left alone.
if (process.env.NODE_TEST_CONTEXT) {
  const seconds = Number(process.env.MUSTER_TEST_FILE_TIMEOUT ?? 600);
  const file = process.argv[1] ?? 'a test file';
  setTimeout(() => {
    process.stderr.write(`test watchdog: ${file} was still running after ${seconds} s; ended\n`);
    process.exit(1);
  }, seconds * 1000).unref();
}
