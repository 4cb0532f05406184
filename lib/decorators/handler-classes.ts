/**
 * Every class a @MessageHandler was put on, in this process. Nest only shows a library the classes
 * that a module lists; a handler class that no module lists would be ignored without a word, so the
 * decorator remembers each class, and startup names those that the app does not have.
 */
const decorated = new Set<object>();
/** Named once per process: a class that no app of the process has stays the same class for each app. */
const named = new Set<object>();

export function rememberHandlerClass(classRef: object): void {
  decorated.add(classRef);
}

/** The handler classes that are in none of `consumed` and were not named before; marks them named. */
export function takeUnconsumedHandlerClasses(consumed: ReadonlySet<object>): object[] {
  const unconsumed = [...decorated].filter((classRef) => !consumed.has(classRef) && !named.has(classRef));
  for (const classRef of unconsumed) named.add(classRef);
  return unconsumed;
}
