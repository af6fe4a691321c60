// The durable outbox of task updates: each stays in IndexedDB until the server answers it.
"use strict";

import { done, request } from "./idb.js";

const OUTBOX = "outbox";

export class Outbox {
  constructor(db) {
    this.db = db;
  }

  // Queue `{task_id, status, note}`; a second identical update is not queued twice.
  async add(update) {
    const tx = this.db.transaction(OUTBOX, "readwrite");
    const store = tx.objectStore(OUTBOX);
    const queued = await request(store.getAll());
    const same = queued.some(
      (u) => u.task_id === update.task_id && u.status === update.status,
    );
    if (!same) store.add({ ...update, queuedAt: Date.now() });
    await done(tx);
    return !same;
  }

  // Return every queued update, oldest first, each with its outbox id.
  async all() {
    const tx = this.db.transaction(OUTBOX, "readonly");
    return request(tx.objectStore(OUTBOX).getAll());
  }

  async remove(id) {
    const tx = this.db.transaction(OUTBOX, "readwrite");
    tx.objectStore(OUTBOX).delete(id);
    await done(tx);
  }

  async clear() {
    const tx = this.db.transaction(OUTBOX, "readwrite");
    tx.objectStore(OUTBOX).clear();
    await done(tx);
  }
}
