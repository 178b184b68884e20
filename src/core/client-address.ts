import { isIPv6 } from 'node:net';

/**
 * The key a client address is counted under (sign-in throttling, the connection cap): an IPv4
 * address as it is (an IPv4-mapped IPv6 address, `::ffff:1.2.3.4`, as its IPv4 address), an IPv6
 * address as its /64 network — one subscriber is usually given a whole /64, and counting single
 * IPv6 addresses would let a client change address at every attempt. Anything else (no address:
 * a socket already closed) counts as `unknown`.
 */
export function clientAddressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const zoneless = address.split('%')[0]!.toLowerCase();
  const [head, tail] = zoneless.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (`::1.2.3.4`) is two groups; only the first four groups matter here.
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}
