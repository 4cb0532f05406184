/**
 * The value of `promise`, or undefined once `ms` passed first. For waits on a broker that may
 * never answer (a blocked or stalled connection): the caller decides what giving up means.
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The value of `promise`, or the error `timedOut()` makes once `ms` passed first. */
export async function withinOrThrow<T>(promise: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  const done = await within(
    promise.then((value) => ({ value })),
    ms,
  );
  if (!done) throw timedOut();
  return done.value;
}
