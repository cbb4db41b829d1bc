export { type Config, type ConfigFlags, loadConfig } from './config.ts';
export { createUserDirect, migrate, startServer } from './serve.ts';
