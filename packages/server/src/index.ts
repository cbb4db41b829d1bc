export { type Config, type ConfigFlags, loadConfig, printableConfig } from './config/load.ts';
export { describeMasterKey, type MasterKeyReport, type RotationReport, rotateMasterKey } from './master-key.ts';
export { type BackupResult, backupSqlite } from './platform/db/backup.ts';
export { createUserDirect, migrate, startServer } from './serve.ts';
