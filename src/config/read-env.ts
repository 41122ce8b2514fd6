/** A configuration value that cannot be used; the message says how to fix it. */
export class ConfigError extends Error {
  constructor(name: string, problem: string) {
    super(`${name} ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Typed readers over an environment, each failing with a message that names the variable. */
export function readEnv(env: NodeJS.ProcessEnv) {
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  return {
    string(name: string, fallback: string): string {
      return raw(name) ?? fallback;
    },
    optionalString(name: string): string | undefined {
      return raw(name);
    },
    requiredString(name: string, hint: string): string {
      const value = raw(name);
      if (value === undefined) throw new ConfigError(name, `is not set; ${hint}`);
      return value;
    },
    int(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
      const value = raw(name);
      if (value === undefined) return fallback;
      const parsed = Number(value);
      const { min = -Infinity, max = Infinity } = range;
      if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
        throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got "${value}"`);
      }
      return parsed;
    },
    bool(name: string, fallback: boolean): boolean {
      const value = raw(name);
      if (value === undefined) return fallback;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw new ConfigError(name, `must be true or false, got "${value}"`);
    },
    oneOf<const T extends readonly string[]>(name: string, choices: T, fallback: T[number]): T[number] {
      const value = raw(name);
      if (value === undefined) return fallback;
      if (!choices.includes(value)) {
        throw new ConfigError(name, `must be one of ${choices.join(', ')}, got "${value}"`);
      }
      return value as T[number];
    },
  };
}
