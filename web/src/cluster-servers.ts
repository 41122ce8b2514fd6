/** The servers' ids for pickers (ATMs): from /_cluster when the page may read it, else s1..s3. */
import { useEffect, useState } from 'preact/hooks';
import { adminHeaders } from './admin.ts';

export function useServerIds(): string[] {
  const [ids, setIds] = useState<string[]>(['s1', 's2', 's3']);
  useEffect(() => {
    fetch('/_cluster', { headers: adminHeaders() })
      .then((r) => (r.ok ? r.json() : null))
      .then((view: { servers: Array<{ id: string }> } | null) => view && setIds(view.servers.map((s) => s.id)))
      .catch(() => undefined);
  }, []);
  return ids;
}
