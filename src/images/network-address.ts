/**
 * Which network addresses downloads may reach: anything public, nothing private. Used by the
 * image store before every request it sends (the first one and each redirect), so a provider's
 * image URL — which the gateway does not control — cannot make the gateway fetch from its own
 * machine or network (SSRF).
 */
import { lookup as dnsLookupWithCallback, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** One address of a host name, as `dns.lookup(name, { all: true })` answers. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses (injectable for tests). */
export type HostLookup = (hostname: string) => Promise<ResolvedAddress[]>;

/** `dns.lookup(hostname, { all: true, verbatim: true })`: every address, IPv4 and IPv6. */
export const systemLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** A range: the first `bits` bits of `prefix` (4 or 16 bytes) and why it is refused. */
interface Range {
  prefix: number[];
  bits: number;
  name: string;
}

const v4 = (cidr: string, name: string): Range => {
  const [address, bits] = cidr.split('/');
  return { prefix: address!.split('.').map(Number), bits: Number(bits), name };
};

/** IPv4 ranges never reached: RFC 6890 special-purpose blocks that are not globally reachable. */
const PRIVATE_IPV4: Range[] = [
  v4('0.0.0.0/8', 'this network'),
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'shared (carrier-grade NAT)'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'IETF protocol assignments'),
  v4('192.0.2.0/24', 'documentation'),
  v4('192.168.0.0/16', 'private'),
  v4('198.18.0.0/15', 'benchmarking'),
  v4('198.51.100.0/24', 'documentation'),
  v4('203.0.113.0/24', 'documentation'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved'),
];

const v6 = (hex: string, bits: number, name: string): Range => ({ prefix: parseIpv6(hex)!, bits, name });

/** IPv6 ranges never reached (embedded IPv4 forms are checked as IPv4, see {@link embeddedIpv4}). */
const PRIVATE_IPV6: Range[] = [
  v6('::', 128, 'unspecified'),
  v6('::1', 128, 'loopback'),
  v6('100::', 64, 'discard-only'),
  v6('2001:db8::', 32, 'documentation'),
  v6('fc00::', 7, 'unique-local'),
  v6('fe80::', 10, 'link-local'),
  v6('fec0::', 10, 'site-local'),
  v6('ff00::', 8, 'multicast'),
];

function matches(bytes: number[], range: Range): boolean {
  let remaining = range.bits;
  for (let index = 0; remaining > 0; index += 1, remaining -= 8) {
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff;
    if ((bytes[index]! & mask) !== (range.prefix[index]! & mask)) return false;
  }
  return true;
}

/** `1.2.3.4` → four bytes; undefined when not a dotted-quad IPv4 address. */
function parseIpv4(text: string): number[] | undefined {
  if (isIP(text) !== 4) return undefined;
  return text.split('.').map(Number);
}

/** An IPv6 address (with `::`, an embedded dotted quad, or a `%zone`) → sixteen bytes; undefined when it is not one. */
export function parseIpv6(text: string): number[] | undefined {
  const address = text.replace(/%.*$/, '');
  if (isIP(address) !== 6) return undefined;
  let head = address;
  let tailBytes: number[] = [];
  const lastColon = head.lastIndexOf(':');
  const ipv4 = parseIpv4(head.slice(lastColon + 1));
  if (ipv4) {
    tailBytes = ipv4;
    head = head.slice(0, lastColon + 1) + '0:0'; // placeholder groups, replaced below
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groups = (part: string | undefined) => (part ? part.split(':').filter((group) => group !== '').map((group) => parseInt(group, 16)) : []);
  const leftGroups = groups(left);
  const rightGroups = groups(right);
  const zeros = right === undefined ? [] : new Array<number>(8 - leftGroups.length - rightGroups.length).fill(0);
  const all = [...leftGroups, ...zeros, ...rightGroups];
  if (all.length !== 8) return undefined;
  const bytes = all.flatMap((group) => [(group >> 8) & 0xff, group & 0xff]);
  if (ipv4) bytes.splice(12, 4, ...tailBytes);
  return bytes;
}

/**
 * The IPv4 address an IPv6 address carries, when it is one of the forms that reach an IPv4 host:
 * IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, or 6to4 `2002:AABB:CCDD::`.
 */
function embeddedIpv4(bytes: number[]): number[] | undefined {
  const zeroUntil = (end: number) => bytes.slice(0, end).every((byte) => byte === 0);
  if (zeroUntil(10) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12);
  if (zeroUntil(12) && !bytes.slice(12).every((byte) => byte === 0) && !(bytes[15] === 1 && zeroUntil(15))) return bytes.slice(12);
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && bytes.slice(4, 12).every((byte) => byte === 0)) return bytes.slice(12);
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return bytes.slice(2, 6);
  return undefined;
}

/**
 * Why an IP address must not be reached (`"loopback"`, `"private"`, `"link-local"`, …), or
 * undefined when it is a public address. Text that is not an IP address counts as not public.
 */
export function privateAddressReason(address: string): string | undefined {
  const ipv4 = parseIpv4(address);
  if (ipv4) return PRIVATE_IPV4.find((range) => matches(ipv4, range))?.name;
  const ipv6 = parseIpv6(address);
  if (!ipv6) return 'not an IP address';
  const carried = embeddedIpv4(ipv6);
  if (carried) {
    const reason = PRIVATE_IPV4.find((range) => matches(carried, range))?.name;
    return reason === undefined ? undefined : `${reason} (IPv4 inside IPv6)`;
  }
  return PRIVATE_IPV6.find((range) => matches(ipv6, range))?.name;
}

/** A host that resolves to an address downloads must not reach. `message` names the host and the reason, never a URL's path or query. */
export class PrivateAddressError extends Error {
  override readonly name = 'PrivateAddressError';
}

/**
 * Checks that a URL's host is public: an IP literal is checked as it is; a name is resolved with
 * `lookup` and every address it resolves to must be public (one private answer is enough to refuse).
 * @throws PrivateAddressError `<host> is a <reason> address` / `<host> resolves to a <reason> address`;
 *   the lookup's own error when the name does not resolve.
 */
export async function assertPublicHost(url: URL, lookup: HostLookup = systemLookup): Promise<void> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(host) !== 0) {
    const reason = privateAddressReason(host);
    if (reason !== undefined) throw new PrivateAddressError(`${host} is a ${reason} address`);
    return;
  }
  const addresses = await lookup(host);
  if (addresses.length === 0) throw new PrivateAddressError(`${host} resolves to no address`);
  for (const { address } of addresses) {
    const reason = privateAddressReason(address);
    // The address itself stays out of the message: it would tell clients how internal names resolve.
    if (reason !== undefined) throw new PrivateAddressError(`${host} resolves to a ${reason} address`);
  }
}

/**
 * A `lookup` for `net.connect` (undici's `connect.lookup`) that resolves like `dns.lookup` and
 * refuses, with a PrivateAddressError, a name that resolves to any address downloads must not
 * reach. It closes the gap DNS rebinding would use between `assertPublicHost` and the connection:
 * the addresses checked here are the ones connected to. Answers in both forms `net` asks for
 * (`options.all` or not). IP literals never come here (`net` connects to them directly), so they
 * are checked by `assertPublicHost` first.
 */
export function publicOnlyLookup(
  hostname: string,
  options: LookupOptions,
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookupWithCallback(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    for (const { address } of addresses) {
      const reason = privateAddressReason(address);
      if (reason !== undefined) return callback(new PrivateAddressError(`${hostname} resolves to a ${reason} address`), '');
    }
    const first = addresses[0];
    if (!first) return callback(new PrivateAddressError(`${hostname} resolves to no address`), '');
    if (options.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
}
