import type { Event } from '@muster/contract';

export type EventListener = (event: Event) => void;

/** In-process fan-out of committed events to streams and watchers. */
export class EventBus {
  readonly #listeners = new Set<EventListener>();

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(event: Event): void {
    for (const listener of this.#listeners) listener(event);
  }

  get size(): number {
    return this.#listeners.size;
  }
}
