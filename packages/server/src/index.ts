export { type Config, type ConfigFlags, loadConfig, printableConfig } from './config.ts';
export { type BackupResult, backupSqlite } from './platform/db/backup.ts';
export { createUserDirect, migrate, startServer } from './serve.ts';
