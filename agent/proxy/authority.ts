// Explicit mode: the service a client names in `:authority` (name.namespace[.svc[.<cluster domain>]]:port).

/**
 * The service key `namespace/name:port` for an authority, or null when it does not name a service in a form we
 * accept. Results are cached because clients repeat the same authority on every request.
 */
export class AuthorityParser {
  private readonly suffixes: string[];
  private readonly cache = new Map<string, string | null>();
  private static readonly CACHE_LIMIT = 4096;

  constructor(clusterDomain: string) {
    this.suffixes = [`.svc.${clusterDomain}`, '.svc'];
  }

  serviceKey(authority: string): string | null {
    const cached = this.cache.get(authority);
    if (cached !== undefined) return cached;
    const key = this.parse(authority);
    if (this.cache.size >= AuthorityParser.CACHE_LIMIT) this.cache.clear();
    this.cache.set(authority, key);
    return key;
  }

  private parse(authority: string): string | null {
    const colon = authority.lastIndexOf(':');
    if (colon <= 0) return null;
    const portText = authority.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(portText)) return null;
    const port = Number(portText);
    if (port < 1 || port > 65535) return null;
    let host = authority.slice(0, colon).toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    for (const suffix of this.suffixes) {
      if (host.endsWith(suffix)) {
        host = host.slice(0, -suffix.length);
        break;
      }
    }
    const parts = host.split('.');
    if (parts.length !== 2) return null;
    const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
    if (!label.test(parts[0]) || !label.test(parts[1])) return null;
    return `${parts[1]}/${parts[0]}:${port}`;
  }
}
