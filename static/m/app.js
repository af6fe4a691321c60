// The volunteer phone app: pairing, duty, sampling, the never-lose-a-fix queue, SOS; it
// wires in the tasks (tasks.js, task-screen.js) and the event reports (reports.js,
// report-screen.js).
"use strict";

import { distanceM } from "./geo.js";
import { LANG, t, translatePage } from "./i18n.js";
import { openDatabase } from "./idb.js";
import { Outbox } from "./outbox.js";
import { FixQueue } from "./queue.js";
import { ReportQueue, Reports } from "./reports.js";
import { ReportScreen } from "./report-screen.js";
import { TaskScreen } from "./task-screen.js";
import { Tasks } from "./tasks.js";

const $ = (id) => document.getElementById(id);
const KEY = {
  token: "tracker.token",
  duty: "tracker.duty",
  sos: "tracker.sos",
  lastFix: "tracker.lastFix",
  person: "tracker.person",
  // Set when the server refused the token; only a new pairing clears it.
  refused: "tracker.refused",
  // Set once the privacy notice has been acknowledged on this phone.
  notice: "tracker.noticeSeen",
};

// Served defaults, overridable per phone (localStorage) or per page (query string) for tests.
const SETTING_NAMES = {
  min_interval_s: "min_interval_s",
  min_distance_m: "min_distance_m",
  max_accuracy_m: "max_accuracy_m",
  batch_size: "batch_size",
  ack_timeout_s: "ack_timeout_s",
  queue_cap: "queue_cap",
};

function loadSettings() {
  const settings = JSON.parse($("settings").textContent);
  const stored = JSON.parse(localStorage.getItem("tracker.settings") || "{}");
  const query = new URLSearchParams(location.search);
  for (const name of Object.keys(SETTING_NAMES)) {
    const value = query.get(name) ?? stored[name];
    if (value !== undefined && value !== null && Number.isFinite(Number(value))) {
      settings[name] = Number(value);
    }
  }
  return settings;
}

const settings = loadSettings();

// Everything the screen shows; exposed as window.trackerPhone for the end-to-end tests.
const state = {
  token: localStorage.getItem(KEY.token),
  onDuty: localStorage.getItem(KEY.duty) === "1",
  dutySynced: false,
  connection: "offline",
  revoked: localStorage.getItem(KEY.refused) === "1",
  person: JSON.parse(localStorage.getItem(KEY.person) || "null"),
  screen: "main",
  lastFix: null,
  lastPosition: null,
  geoError: null,
  queued: 0,
  rejected: 0,
  capped: 0,
  recorded: 0,
  stored: 0,
  duplicates: 0,
  // Fixes the server acknowledged but did not keep (outside the tracking policy), since
  // the last batch it kept in full.
  notKept: 0,
  battery: null,
  sos: JSON.parse(localStorage.getItem(KEY.sos) || "[]"),
  tasks: [],
  taskUpdatesQueued: 0,
  reportsQueued: 0,
  synced: 0,
  settings,
};
window.trackerPhone = state;

let queue = null;
let tasks = null;
let reports = null;
let taskScreen = null;
let reportScreen = null;
let socket = null;
let watchId = null;
let wakeLock = null;
let sending = false;
let batchLimit = settings.batch_size;
let backoffMs = 0;
let retryTimer = null;
let sosTimer = null;
let audio = null;

// --- pairing --------------------------------------------------------------------------

function tokenFromLink() {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!match) return null;
  // The token is a credential: keep it out of the address bar, history and screenshots.
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

async function pair(token) {
  if (!token || token === state.token) return;
  // A refused token can send nothing more: what it queued is lost either way.
  if (state.token && !state.revoked) {
    const queued = await queue.count();
    const unsent = reports.queued.length;
    if ((queued > 0 || unsent > 0) && !confirm(t("repair_confirm_queued", { n: queued, r: unsent }))) {
      return;
    }
  }
  disconnect();
  // Fixes, answers and reports queued under another device would be someone else's.
  await Promise.all([queue.clear(), tasks.clear(), reports.clear()]);
  localStorage.setItem(KEY.token, token);
  for (const key of [KEY.sos, KEY.lastFix, KEY.person, KEY.refused]) localStorage.removeItem(key);
  Object.assign(state, {
    token,
    revoked: false,
    person: null,
    sos: [],
    lastFix: null,
    rejected: 0,
    capped: 0,
  });
}

async function unpair() {
  const queued = await queue.count();
  const unsent = reports.queued.length;
  const question =
    queued > 0 || unsent > 0
      ? t("unpair_confirm_queued", { n: queued, r: unsent })
      : t("unpair_confirm");
  if (!confirm(question)) return;
  if (!state.revoked) await setDuty(false, { send: true });
  disconnect();
  await Promise.all([queue.clear(), tasks.clear(), reports.clear()]);
  for (const key of Object.values(KEY)) localStorage.removeItem(key);
  Object.assign(state, {
    token: null,
    revoked: false,
    person: null,
    onDuty: false,
    sos: [],
    lastFix: null,
  });
  await refreshCounts();
  render();
}

// The server refused the token (revoked, or its person deactivated): say so, and stop
// sampling, sending and reconnecting until a new pairing link is opened.
function refuse() {
  if (state.revoked) return;
  state.revoked = true;
  localStorage.setItem(KEY.refused, "1");
  disconnect();
  clearTimeout(retryTimer);
  stopWatching();
  if (wakeLock) wakeLock.release().catch(() => {});
  wakeLock = null;
  state.onDuty = false;
  localStorage.setItem(KEY.duty, "0");
  state.screen = "main";
  render();
}

// --- connection -----------------------------------------------------------------------

function connect() {
  if (!state.token || state.revoked || socket) return;
  state.connection = "connecting";
  socket = io("/device", {
    transports: ["websocket"],
    auth: { token: state.token },
    reconnectionDelay: 1000,
    reconnectionDelayMax: 10000,
  });
  socket.on("connect", () => {
    state.connection = "connected";
    backoffMs = 0;
    batchLimit = settings.batch_size;
    render();
    syncDuty();
    sendPendingSos();
    flush();
    syncWithServer();
    tasks.flush();
    reports.upload({ now: true });
  });
  socket.on("disconnect", () => {
    state.connection = navigator.onLine ? "connecting" : "offline";
    // The server may have ended a shift that went quiet meanwhile (SHIFT_IDLE_CLOSE_S):
    // say again that this phone is on duty before sending what it queued.
    if (state.onDuty) state.dutySynced = false;
    render();
  });
  socket.on("connect_error", (err) => {
    if (String(err.message).startsWith("auth.token")) {
      refuse();
    } else {
      state.connection = "offline";
    }
    render();
  });
  socket.on("revoked", refuse);
  socket.on("duty", onDutySetByStaff);
  socket.on("task", onTask);
  socket.on("report_status", (status) => reports.setStatus(status));
}

function disconnect() {
  if (socket) {
    socket.removeAllListeners();
    socket.disconnect();
    socket = null;
  }
  state.connection = "offline";
}

// Resolve with the ack, or null when none came in time (lost, or the link is down).
function call(event, payload, timeoutS = settings.ack_timeout_s) {
  return new Promise((resolve) => {
    if (!socket || !socket.connected) return resolve(null);
    socket.timeout(timeoutS * 1000).emit(event, payload, (err, ack) => resolve(err ? null : ack));
  });
}

function isRefusal(ack) {
  return Boolean(ack && !ack.ok && String(ack.error).startsWith("auth.token"));
}

// On every connect: who this phone belongs to, its tasks and its reports.
async function syncWithServer() {
  const ack = await call("sync", {});
  if (isRefusal(ack)) return refuse();
  if (ack && ack.ok) {
    state.person = ack.person || null;
    localStorage.setItem(KEY.person, JSON.stringify(state.person));
    state.synced += 1;
    reports.replaceMine(ack.reports || []);
    await tasks.replace(ack.tasks || []);
  } else if ((!ack || ack.retry) && socket && socket.connected) {
    setTimeout(syncWithServer, 3000);
  } else if (ack) {
    console.error("sync refused", ack.error);
  }
  render();
}

// --- the queue: nothing leaves it before the server has acknowledged it ----------------

function wire(fix) {
  const item = { ts: fix.ts, lat: fix.lat, lon: fix.lon };
  for (const name of ["accuracy", "altitude", "speed", "heading", "battery"]) {
    if (Number.isFinite(fix[name])) item[name] = fix[name];
  }
  return item;
}

function scheduleRetry() {
  backoffMs = Math.min(30000, backoffMs ? backoffMs * 2 : 1000);
  clearTimeout(retryTimer);
  // Jitter spreads the phones out after an outage so they do not all return at once.
  retryTimer = setTimeout(flush, backoffMs * (0.75 + Math.random() * 0.5));
}

async function flush() {
  if (sending || !queue || !socket || !socket.connected) return;
  // Under the `on_duty` policy the server keeps a fix only once it knows of the shift.
  if (state.onDuty && !state.dutySynced) return;
  sending = true;
  try {
    while (socket && socket.connected) {
      const batch = await queue.oldest(batchLimit);
      if (batch.length === 0) break;
      const ack = await call("positions", { positions: batch.map(wire) }, settings.ack_timeout_s);
      if (ack && ack.ok) {
        await queue.remove(batch.map((fix) => fix.id));
        const rejected = (ack.rejected || []).length;
        if (rejected) await queue.bump("rejected", rejected);
        state.stored += ack.stored;
        state.duplicates += ack.duplicates;
        noteNotKept(ack.not_kept || 0);
        backoffMs = 0;
        batchLimit = settings.batch_size;
      } else if (ack && !ack.retry) {
        if (isRefusal(ack)) {
          refuse();
          break;
        }
        // The batch as a whole was refused (too large, say): halve it until the one bad
        // fix is alone, then drop that fix, so one fix can never block the queue.
        if (batch.length > 1) {
          batchLimit = Math.max(1, Math.floor(batch.length / 2));
        } else {
          await queue.remove([batch[0].id]);
          await queue.bump("rejected", 1);
        }
      } else {
        scheduleRetry();
        break;
      }
      await refreshCounts();
      render();
    }
  } catch (err) {
    console.error("flush failed", err);
    scheduleRetry();
  } finally {
    sending = false;
    await refreshCounts();
    render();
  }
}

async function refreshCounts() {
  if (!queue) return;
  const [queued, rejected, capped] = await Promise.all([
    queue.count(),
    queue.meta("rejected"),
    queue.meta("capped"),
  ]);
  Object.assign(state, { queued, rejected, capped });
  render();
}

// Acknowledged, so the queue moves on, but not stored: say so instead of showing them sent.
function noteNotKept(count) {
  state.notKept = count ? state.notKept + count : 0;
}

// --- sampling -------------------------------------------------------------------------

async function onPosition(position) {
  const c = position.coords;
  const fix = {
    ts: Math.round(position.timestamp),
    lat: c.latitude,
    lon: c.longitude,
    accuracy: c.accuracy,
    altitude: c.altitude,
    speed: c.speed,
    heading: Number.isFinite(c.heading) && c.heading >= 0 && c.heading < 360 ? c.heading : null,
    battery: state.battery ? state.battery.level : null,
  };
  state.geoError = null;
  state.lastPosition = fix;
  if (!Number.isFinite(c.accuracy) || c.accuracy > settings.max_accuracy_m) return render();
  const last = state.lastFix;
  if (last) {
    if (fix.ts <= last.ts) return render();
    const waited = fix.ts - last.ts >= settings.min_interval_s * 1000;
    if (!waited && distanceM(last, fix) < settings.min_distance_m) return render();
  }
  state.lastFix = fix;
  localStorage.setItem(KEY.lastFix, JSON.stringify(fix));
  await queue.add(fix, settings.queue_cap);
  state.recorded += 1;
  await refreshCounts();
  render();
  flush();
}

function onPositionError(err) {
  state.geoError = err.code === err.PERMISSION_DENIED ? t("geo_denied") : err.message;
  render();
}

function startWatching() {
  if (watchId !== null || state.revoked) return;
  if (!("geolocation" in navigator)) {
    state.geoError = t("geo_unavailable");
    return;
  }
  watchId = navigator.geolocation.watchPosition(onPosition, onPositionError, {
    enableHighAccuracy: true,
    maximumAge: 0,
    timeout: 60000,
  });
}

// Ask the GPS once (the task and report screens), without keeping a fix for the track.
function refreshPosition() {
  if (state.revoked || !("geolocation" in navigator)) return Promise.resolve(null);
  return new Promise((resolve) => {
    navigator.geolocation.getCurrentPosition(
      (position) => {
        const c = position.coords;
        state.lastPosition = {
          ts: Math.round(position.timestamp),
          lat: c.latitude,
          lon: c.longitude,
          accuracy: c.accuracy,
        };
        resolve(state.lastPosition);
      },
      () => resolve(null),
      { enableHighAccuracy: true, maximumAge: 30000, timeout: 10000 },
    );
  });
}

function ownPosition() {
  return state.lastPosition || state.lastFix || null;
}

function stopWatching() {
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
}

// --- duty -----------------------------------------------------------------------------

async function setDuty(on, { send = true } = {}) {
  if (state.revoked) return;
  state.onDuty = on;
  state.dutySynced = false;
  localStorage.setItem(KEY.duty, on ? "1" : "0");
  if (on) {
    startWatching();
    await keepScreenOn();
  } else {
    stopWatching();
    if (wakeLock) wakeLock.release().catch(() => {});
    wakeLock = null;
  }
  render();
  if (send) await syncDuty();
}

let dutySending = false;

async function syncDuty() {
  if (dutySending || state.dutySynced || !socket || !socket.connected) return;
  dutySending = true;
  let sent;
  try {
    sent = await sendDuty();
  } finally {
    dutySending = false;
  }
  // Tapped again while the last one was on its way: send the newer one.
  if (sent !== undefined && sent !== state.onDuty) syncDuty();
}

// Fixes taken on duty are sent after an `on` and before an `off`: the server keeps a
// fix only while the person is on duty. Return what the server acknowledged, if it did.
async function sendDuty() {
  const on = state.onDuty;
  if (!on) {
    await flush();
    if (queue && (await queue.count()) > 0) {
      setTimeout(syncDuty, 3000);
      return;
    }
  }
  const ack = await call("duty", { on }, settings.ack_timeout_s);
  if (ack && ack.ok) {
    if (state.onDuty === on) {
      state.dutySynced = true;
      if (on) flush();
    }
    render();
    return on;
  }
  if (isRefusal(ack)) {
    refuse();
  } else if (!ack || ack.retry) {
    setTimeout(syncDuty, 3000);
  }
  render();
}

// Staff started or ended this person's shift on /admin: follow it, and sample only on
// duty. Saying it back to the server settles a `duty` this phone sent meanwhile.
function onDutySetByStaff(payload) {
  if (!payload || typeof payload.on !== "boolean" || state.revoked) return;
  if (payload.on !== state.onDuty) setDuty(payload.on);
}

async function keepScreenOn() {
  if (!state.onDuty || !("wakeLock" in navigator) || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
  } catch (err) {
    console.warn("wake lock refused", err);
  }
}

// --- SOS ------------------------------------------------------------------------------

function saveSos() {
  localStorage.setItem(KEY.sos, JSON.stringify(state.sos.slice(-10)));
}

function raiseSos() {
  if (state.revoked) return;
  const where = state.lastPosition || state.lastFix;
  state.sos.push({
    ts: Date.now(),
    lat: where ? where.lat : null,
    lon: where ? where.lon : null,
    note: $("sos-note").value.trim(),
    receivedAt: null,
  });
  $("sos-note").value = "";
  saveSos();
  if (navigator.vibrate) navigator.vibrate([300, 100, 300]);
  render();
  sendPendingSos();
}

let sosSending = false;

async function sendPendingSos() {
  if (sosSending) return;
  sosSending = true;
  try {
    for (const sos of state.sos.filter((s) => !s.receivedAt)) {
      const { ts, lat, lon, note } = sos;
      const ack = await call("sos", { ts, lat, lon, note }, 10);
      if (ack && ack.ok) {
        sos.receivedAt = ack.received_at;
        saveSos();
      } else if (isRefusal(ack)) {
        refuse();
        break;
      } else if (!ack || ack.retry) {
        // Retried until the server has it: the reconnect handler also calls this.
        setTimeout(sendPendingSos, 2000);
        break;
      } else {
        console.error("SOS refused", ack.error);
        sos.receivedAt = "refused";
        saveSos();
      }
    }
  } finally {
    sosSending = false;
    render();
  }
}

function holdToConfirm(button, holdMs, action) {
  const cancel = () => {
    clearTimeout(sosTimer);
    button.classList.remove("holding");
  };
  button.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    button.classList.add("holding");
    sosTimer = setTimeout(() => {
      button.classList.remove("holding");
      action();
    }, holdMs);
  });
  for (const name of ["pointerup", "pointerleave", "pointercancel"]) {
    button.addEventListener(name, cancel);
  }
  // A long press would otherwise open the phone's context menu.
  button.addEventListener("contextmenu", (event) => event.preventDefault());
}

// --- tasks from the command centre ------------------------------------------------------

function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  } catch (err) {
    console.warn("no sound", err);
  }
}

function announceTask() {
  if (navigator.vibrate) navigator.vibrate([200, 100, 200, 100, 200]);
  beep();
}

// A task was sent, sent again or cancelled: the Tasks model acknowledges delivery.
function onTask(task, ack) {
  tasks.upsert(task).then(render);
  if (typeof ack === "function") ack({ ok: true });
}

function categoryLabel(id) {
  const category = (settings.categories || []).find((c) => c.id === id);
  if (!category) return id || "";
  return LANG === "zh" ? category.zh : category.en;
}

function showScreen(screen) {
  state.screen = screen;
  window.scrollTo(0, 0);
  render();
}

// --- battery ----------------------------------------------------------------------------

async function watchBattery() {
  if (!navigator.getBattery) return;
  try {
    const battery = await navigator.getBattery();
    const update = () => {
      state.battery = { level: battery.level, charging: battery.charging };
      render();
    };
    battery.addEventListener("levelchange", update);
    battery.addEventListener("chargingchange", update);
    update();
  } catch (err) {
    console.warn("battery unavailable", err);
  }
}

// --- screen -----------------------------------------------------------------------------

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function show(id, text) {
  const el = $(id);
  el.hidden = !text;
  el.textContent = text || "";
}

function render() {
  const paired = Boolean(state.token) && !state.revoked;
  $("unpaired").hidden = paired;
  $("paired").hidden = !paired || state.screen !== "main";
  $("task-view").hidden = !paired || state.screen !== "task";
  $("report-view").hidden = !paired || state.screen !== "report";
  $("privacy-notice").hidden = !paired || localStorage.getItem(KEY.notice) === "1";
  // One clear state for a refused token: the new pairing is the only way on.
  $("unpaired-title").textContent = t(state.revoked ? "unpaired_title" : "not_paired_title");
  $("unpaired-body").textContent = t(state.revoked ? "unpaired_body" : "not_paired_body");
  for (const id of ["duty", "sos"]) $(id).disabled = !paired;
  const conn = $("conn");
  conn.className = `pill pill-${state.connection}`;
  $("conn-text").textContent = t(state.connection === "connected" ? "connected" : state.connection);
  if (tasks) {
    state.tasks = tasks.list().map((task) => ({ ...task, shown: tasks.status(task) }));
    state.taskUpdatesQueued = tasks.pending.length;
  }
  if (reports) state.reportsQueued = reports.queued.length;
  if (!paired || !taskScreen) return;

  show("geo-error", state.geoError);
  show("capped", state.capped ? t("capped", { n: state.capped }) : "");
  show("rejected", state.rejected ? t("rejected", { n: state.rejected }) : "");
  const notKept = $("not-kept");
  notKept.className = `banner ${state.notKept ? "banner-warn" : "banner-muted"}`;
  show(
    "not-kept",
    state.notKept ? t("not_kept", { n: state.notKept }) : state.onDuty ? "" : t("off_duty_not_kept"),
  );

  const sos = state.sos[state.sos.length - 1];
  const sosBanner = $("sos-status");
  if (sos) {
    const received = sos.receivedAt && sos.receivedAt !== "refused";
    sosBanner.className = `banner ${received ? "banner-ok" : "banner-danger"}`;
    show("sos-status", received ? t("sos_received", { t: clock(Date.parse(sos.receivedAt)) }) : t("sos_sending"));
  } else {
    show("sos-status", "");
  }

  show("person-name", state.person ? state.person.name : "");
  const duty = $("duty");
  duty.textContent = t(state.onDuty ? "go_off_duty" : "go_on_duty");
  duty.setAttribute("aria-pressed", String(state.onDuty));
  duty.classList.toggle("on", state.onDuty);
  const dutyState = $("duty-state");
  dutyState.className = `duty-state ${state.onDuty ? "on" : "off"}`;
  dutyState.textContent =
    t(state.onDuty ? "on_duty" : "off_duty") +
    (state.dutySynced || state.connection === "connected" ? "" : ` · ${t("duty_pending")}`);

  const fix = state.lastFix;
  $("last-fix").textContent = fix
    ? `${clock(fix.ts)} · ${t("accuracy", { m: Math.round(fix.accuracy) })}`
    : state.onDuty
      ? t("no_fix_yet")
      : t("unknown");
  $("queued").textContent = String(state.queued);
  $("queued").classList.toggle("warn", state.queued > 0);
  $("battery").textContent = state.battery
    ? `${Math.round(state.battery.level * 100)} %${state.battery.charging ? ` · ${t("charging")}` : ""}`
    : t("unknown");
  $("background").hidden = !state.onDuty;

  taskScreen.renderList($("tasks"));
  taskScreen.render();
  reportScreen.renderList();
}

// The GPS apps' settings hold the token: shown only on request, hidden again on closing.
function toggleSetupValues(show) {
  $("setup-values").hidden = !show;
  $("setup-show").textContent = t(show ? "setup_hide" : "setup_show");
  $("setup-url").textContent = show ? `${location.origin}/osmand` : "";
  $("setup-token").textContent = show ? state.token || "" : "";
}

// --- start ------------------------------------------------------------------------------

async function start() {
  translatePage();
  $("notice-how-long").textContent = t("notice_how_long", { days: settings.retention_days ?? 90 });
  $("notice-ok").addEventListener("click", () => {
    localStorage.setItem(KEY.notice, "1");
    render();
  });
  const db = await openDatabase();
  queue = new FixQueue(db);
  tasks = new Tasks({
    outbox: new Outbox(db),
    call: (event, payload) => call(event, payload),
    onRefused: refuse,
    onNew: announceTask,
    onChange: render,
  });
  reports = new Reports({
    queue: new ReportQueue(db),
    token: () => (state.revoked ? null : state.token),
    onRefused: refuse,
    onChange: render,
  });
  taskScreen = new TaskScreen({
    tasks,
    categoryLabel,
    position: ownPosition,
    refreshPosition,
    showScreen,
  });
  reportScreen = new ReportScreen({
    reports,
    categories: settings.categories || [],
    categoryLabel,
    position: ownPosition,
    refreshPosition,
    showScreen,
  });
  await Promise.all([tasks.load(), reports.load()]);
  // For the end-to-end tests: the map's content and the upload count.
  Object.defineProperty(state, "taskMap", { get: () => taskScreen.mapShown });
  Object.defineProperty(state, "reportUploads", { get: () => reports.uploads });
  Object.defineProperty(state, "myReports", { get: () => reports.mine });

  const linked = tokenFromLink();
  if (linked) await pair(linked);
  state.lastFix = JSON.parse(localStorage.getItem(KEY.lastFix) || "null");
  await refreshCounts();

  $("pair-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await pair($("token-input").value.trim());
    connect();
    render();
  });
  // A pairing link opened while the app is already open changes only the hash.
  window.addEventListener("hashchange", async () => {
    const token = tokenFromLink();
    if (!token) return;
    await pair(token);
    await refreshCounts();
    connect();
    render();
  });
  $("unpair").addEventListener("click", unpair);
  $("duty").addEventListener("click", () => {
    // A tap is the user gesture that lets the task chime play later.
    if (!audio && window.AudioContext) audio = new AudioContext();
    setDuty(!state.onDuty);
  });
  $("report-open").addEventListener("click", () => reportScreen.open());
  $("setup-show").addEventListener("click", () => toggleSetupValues($("setup-values").hidden));
  $("setup").addEventListener("toggle", () => {
    if (!$("setup").open) toggleSetupValues(false);
  });
  holdToConfirm($("sos"), 2000, raiseSos);
  document.addEventListener("visibilitychange", keepScreenOn);
  window.addEventListener("online", () => reports.upload({ now: true }));
  setInterval(() => {
    flush();
    reports.upload();
    render();
  }, 5000);

  watchBattery();
  if (state.onDuty && !state.revoked) await setDuty(true, { send: false });
  connect();
  render();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m" }).catch((err) => {
      console.warn("service worker not registered", err);
    });
  }
  state.ready = true;
}

start();
