/** What happened in the cluster, in words, for the dashboard's event log (the last few kept). */
export interface ClusterEvent {
  at: string;
  text: string;
}

const KEPT = 100;

export class ClusterEvents {
  readonly #recent: ClusterEvent[] = [];
  readonly #listeners = new Set<(event: ClusterEvent) => void>();

  emit(text: string): void {
    const event = { at: new Date().toISOString(), text };
    this.#recent.push(event);
    if (this.#recent.length > KEPT) this.#recent.shift();
    for (const listener of this.#listeners) listener(event);
  }

  get recent(): readonly ClusterEvent[] {
    return this.#recent;
  }

  on(listener: (event: ClusterEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}
