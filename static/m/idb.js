// The phone's one IndexedDB database: fixes, task updates and event reports, each kept
// until the server has acknowledged it.
"use strict";

export const DB_NAME = "tracker-phone";
const VERSION = 2;

export function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () => reject(tx.error || new Error("transaction aborted"));
  });
}

export async function openDatabase() {
  const openReq = indexedDB.open(DB_NAME, VERSION);
  openReq.onupgradeneeded = (event) => {
    const db = openReq.result;
    if (event.oldVersion < 1) {
      // Auto-increment keys keep the fixes in the order they were taken.
      db.createObjectStore("fixes", { keyPath: "id", autoIncrement: true });
      db.createObjectStore("meta", { keyPath: "key" });
    }
    if (event.oldVersion < 2) {
      // Task updates in the order they were made; reports by the phone's own key.
      db.createObjectStore("outbox", { keyPath: "id", autoIncrement: true });
      db.createObjectStore("reports", { keyPath: "key" });
    }
  };
  const db = await request(openReq);
  // Another tab opening a newer version must not wait for this one forever.
  db.onversionchange = () => db.close();
  return db;
}
