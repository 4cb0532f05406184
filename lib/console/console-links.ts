/** A URL of the console: its mount path, a route, and query parameters (encoded). */
export function consoleUrl(base: string, route: string, params: Record<string, string | number | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, String(value));
  const search = query.toString();
  return `${base}${route}${search ? `?${search}` : ''}`;
}
