// The persistent queue of fixes: IndexedDB keeps every fix until the server acknowledges it.
"use strict";

import { done, request } from "./idb.js";

const FIXES = "fixes";
const META = "meta";

export class FixQueue {
  constructor(db) {
    this.db = db;
  }

  // Store a fix; past `cap` fixes drop the oldest and return how many were dropped.
  async add(fix, cap) {
    const tx = this.db.transaction([FIXES, META], "readwrite");
    const fixes = tx.objectStore(FIXES);
    fixes.add(fix);
    const total = await request(fixes.count());
    let dropped = 0;
    if (total > cap) {
      const excess = total - cap;
      const oldest = await request(fixes.getAllKeys(null, excess));
      for (const key of oldest) fixes.delete(key);
      dropped = oldest.length;
      const meta = tx.objectStore(META);
      const row = (await request(meta.get("capped"))) || { key: "capped", value: 0 };
      meta.put({ key: "capped", value: row.value + dropped });
    }
    await done(tx);
    return dropped;
  }

  // Return up to `n` of the oldest fixes, each with its queue id.
  async oldest(n) {
    const tx = this.db.transaction(FIXES, "readonly");
    return request(tx.objectStore(FIXES).getAll(null, n));
  }

  async remove(ids) {
    const tx = this.db.transaction(FIXES, "readwrite");
    const fixes = tx.objectStore(FIXES);
    for (const id of ids) fixes.delete(id);
    await done(tx);
  }

  async count() {
    const tx = this.db.transaction(FIXES, "readonly");
    return request(tx.objectStore(FIXES).count());
  }

  async meta(key) {
    const tx = this.db.transaction(META, "readonly");
    const row = await request(tx.objectStore(META).get(key));
    return row ? row.value : 0;
  }

  async bump(key, n) {
    const tx = this.db.transaction(META, "readwrite");
    const meta = tx.objectStore(META);
    const row = (await request(meta.get(key))) || { key, value: 0 };
    meta.put({ key, value: row.value + n });
    await done(tx);
  }

  async clear() {
    const tx = this.db.transaction([FIXES, META], "readwrite");
    tx.objectStore(FIXES).clear();
    tx.objectStore(META).clear();
    await done(tx);
  }
}
