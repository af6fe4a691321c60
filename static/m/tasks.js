// Tasks from the command centre: the list the server syncs, and the answers the person
// gives, each kept in the outbox until the server has acknowledged it.
"use strict";

const KEY = "tracker.tasks";
const FINAL = new Set(["declined", "done", "cancelled"]);
const ACTIVE_ORDER = { sent: 0, delivered: 0, accepted: 1 };

// What the person may answer in each state (docs/incidents.md): nothing once final.
export const ACTIONS = {
  sent: ["accepted", "declined", "done"],
  delivered: ["accepted", "declined", "done"],
  accepted: ["done", "declined"],
};

export function isFinal(status) {
  return FINAL.has(status);
}

export class Tasks {
  /**
   * @param {object} options
   * @param {import("./outbox.js").Outbox} options.outbox
   * @param {(event: string, payload: object) => Promise<object|null>} options.call
   * @param {() => void} options.onRefused  the server refused the device token
   * @param {(task: object) => void} options.onNew  a task arrived that the phone had not seen
   * @param {() => void} options.onChange
   */
  constructor({ outbox, call, onRefused, onNew, onChange }) {
    Object.assign(this, { outbox, call, onRefused, onNew, onChange });
    // Tasks saved by an older version of the app, in states it no longer knows, are dropped.
    const saved = JSON.parse(localStorage.getItem(KEY) || "[]");
    this.tasks = saved.filter((task) => task.status in ACTIONS || FINAL.has(task.status));
    this.pending = []; // queued updates, oldest first
    this.errors = {}; // task id → the server's refusal of the person's last answer
    this.sending = false;
    this.again = false; // flush() was called while a flush was running
    this.backoffMs = 0;
    this.retryTimer = null;
  }

  async load() {
    this.pending = await this.outbox.all();
    this.onChange();
  }

  save() {
    localStorage.setItem(KEY, JSON.stringify(this.tasks));
  }

  // The status the person sees: their own answer while it is on its way, else the server's.
  status(task) {
    const queued = this.pending.filter((u) => u.task_id === task.id);
    return queued.length ? queued[queued.length - 1].status : task.status;
  }

  isSending(task) {
    return this.pending.some((u) => u.task_id === task.id);
  }

  byId(id) {
    return this.tasks.find((task) => task.id === id) || null;
  }

  // Active tasks first, then the newest.
  list() {
    const rank = (task) => ACTIVE_ORDER[this.status(task)] ?? 2;
    return [...this.tasks].sort(
      (a, b) => rank(a) - rank(b) || String(b.assigned_at).localeCompare(String(a.assigned_at)),
    );
  }

  // `sync` answered: its list replaces the phone's.
  async replace(tasks) {
    const known = new Set(this.tasks.map((task) => task.id));
    this.tasks = tasks.map((task) => ({ ...task }));
    this.save();
    for (const task of this.tasks) {
      if (!known.has(task.id) && !isFinal(task.status)) this.onNew(task);
    }
    await this.acknowledgeDelivery();
  }

  // A `task` event: a new task, one sent again, or one cancelled.
  async upsert(task) {
    const old = this.byId(task.id);
    if (old) Object.assign(old, task);
    else this.tasks.unshift({ ...task });
    this.save();
    if (task.status === "sent" || !old) this.onNew(task);
    await this.acknowledgeDelivery();
  }

  async acknowledgeDelivery() {
    for (const task of this.tasks.filter((t) => t.status === "sent")) {
      await this.outbox.add({ task_id: task.id, status: "delivered" });
    }
    await this.load();
    this.flush();
  }

  // The person answered: accepted, declined (with an optional reason) or done.
  async answer(task, status, note) {
    const update = { task_id: task.id, status };
    if (note) update.note = note.slice(0, 500);
    delete this.errors[task.id];
    await this.outbox.add(update);
    await this.load();
    this.flush();
  }

  async flush() {
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    this.again = false;
    clearTimeout(this.retryTimer);
    try {
      // The oldest first, one at a time: an answer made meanwhile is sent in this run too.
      for (let [update] = await this.outbox.all(); update; [update] = await this.outbox.all()) {
        const payload = { id: update.task_id, status: update.status };
        if (update.note) payload.note = update.note;
        const ack = await this.call("task_update", payload);
        if (ack && ack.ok) {
          const task = this.byId(update.task_id);
          if (task) task.status = ack.status;
          this.save();
          await this.outbox.remove(update.id);
          this.backoffMs = 0;
        } else if (ack && !ack.retry && String(ack.error).startsWith("auth.token")) {
          this.onRefused();
          return;
        } else if (ack && !ack.retry) {
          // Refused for good (no such task, say): resending would be refused again.
          this.errors[update.task_id] = ack.error;
          await this.outbox.remove(update.id);
        } else {
          this.scheduleRetry();
          return;
        }
        await this.load();
      }
    } catch (err) {
      console.error("task updates not sent", err);
      this.scheduleRetry();
    } finally {
      this.sending = false;
      await this.load();
    }
    if (this.again) this.flush();
  }

  scheduleRetry() {
    this.backoffMs = Math.min(30000, this.backoffMs ? this.backoffMs * 2 : 1000);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.flush(), this.backoffMs * (0.75 + Math.random() * 0.5));
  }

  async clear() {
    clearTimeout(this.retryTimer);
    await this.outbox.clear();
    this.tasks = [];
    this.pending = [];
    this.errors = {};
    localStorage.removeItem(KEY);
    this.onChange();
  }
}
