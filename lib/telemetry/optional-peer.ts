import { MessagingConfigError } from '../messaging.errors';

/**
 * An optional peer dependency, loaded only when an option asks for it, so the module loads
 * without it; undefined when it is not installed.
 */
export function optionalPeer<T>(name: string): T | undefined {
  try {
    require.resolve(name);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional peer is loaded only when the options ask for it
  return require(name) as T;
}

/** An optional peer that `option` needs: a MessagingConfigError saying what to install when it is missing. */
export function requiredPeer<T>(name: string, option: string): T {
  const peer = optionalPeer<T>(name);
  if (peer === undefined) {
    throw new MessagingConfigError(`MessagingModule option "${option}" needs the "${name}" package: npm install ${name}`);
  }
  return peer;
}
