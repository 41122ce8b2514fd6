import { newKeyEncryptionKey } from '../../src/accounts/tokens/key-encryption.ts';

/**
 * The key-encryption key of a test process's servers (the signing keys are sealed with it). One
 * per process: every server and `npm run keys` of a test must open what the others sealed.
 */
export const TEST_KEY_ENCRYPTION_KEY = newKeyEncryptionKey();
