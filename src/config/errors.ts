/** A configuration the server cannot start with; the message names the setting as the user wrote it. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
