/**
 * The servers' ids for pickers (the ATMs), from /_cluster: empty until it answers, and empty when
 * this visitor may not read it (off loopback without the admin token): then only "any server".
 */
import { useEffect, useState } from 'preact/hooks';
import { adminHeaders, control } from './admin.ts';

export function useServerIds(): string[] {
  const [ids, setIds] = useState<string[]>([]);
  useEffect(() => {
    control
      .GET('/_cluster', { headers: adminHeaders() })
      .then(({ data }) => {
        if (data) setIds(data.servers.filter((s) => s.status !== 'down').map((s) => s.id));
      })
      .catch(() => undefined);
  }, []);
  return ids;
}
