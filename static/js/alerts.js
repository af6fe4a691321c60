/* The alerts panel: the list, toasts and sounds, and the sentences made from alert facts.
 *
 * Machine alerts carry facts in `details` (metres, minutes, a battery level) and no note;
 * the page says them in its own language. Old alerts have only `note`, which is shown.
 */
import { getJson, sendJson } from "./api.js";
import { clock, t } from "./i18n.js";
import { el, flashTab, showTab, toast } from "./ui.js";

export const ALERT_COLORS = {
  sos: "#d0021b",
  zone_exit: "#e67e22",
  zone_enter: "#27ae60",
  signal_lost: "#7d3c98",
  signal_back: "#2e86c1",
  low_battery: "#b7950b",
  task_undelivered: "#c2185b",
};

/** Return the sentence an alert's `details` say, or null when it has none. */
export function alertFacts(alert) {
  const d = alert.details;
  if (!d || typeof d !== "object") return null;
  switch (alert.kind) {
    case "zone_exit":
    case "zone_enter":
      if (d.distance_m == null) return null;
      return t(`alert_fact.${d.inside === true || (d.inside == null && alert.kind === "zone_enter") ? "zone_enter" : "zone_exit"}`,
        { n: Math.round(d.distance_m) });
    case "low_battery":
      return d.battery == null ? null : t("alert_fact.low_battery", { n: Math.round(d.battery * 100) });
    case "signal_lost":
      return d.minutes == null ? null : t("alert_fact.signal_lost", { n: d.minutes });
    case "task_undelivered":
      return t("alert_fact.task_undelivered", { task: d.task_id, n: d.minutes });
    default:
      return null;
  }
}

/** Return what an alert says: its facts, then the person's own note (SOS, old alerts). */
export function alertText(alert) {
  return [alertFacts(alert), alert.note].filter(Boolean).join(" · ");
}

/** Follow the alerts in scope; `openIncident(id)` opens the incident of a task alert. */
export function createAlerts({ base, people, socket, canDispatch, openIncident, onZoneAlert }) {
  let alerts = [];
  const filter = { kind: "", open: true };
  const freshIds = new Set();
  const kindLabel = (kind) => t(`alert.${kind}`);
  const personName = (id, fallback) => fallback || people.people.get(id)?.name || `#${id}`;

  // Browsers allow audio only after the user has interacted with the page.
  let audio = null;
  const unlockAudio = () => {
    if (!audio && window.AudioContext) audio = new AudioContext();
  };
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  function beep(kind) {
    if (!audio) return;
    const count = kind === "sos" ? 3 : 1;
    for (let i = 0; i < count; i += 1) {
      const start = audio.currentTime + i * 0.22;
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = kind === "sos" ? 988 : 660;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(start);
      osc.stop(start + 0.18);
    }
  }

  /** Act on a click on an alert: open its incident, or fly to where it was raised. */
  function follow(alert) {
    const incidentId = alert.details?.incident_id;
    if (alert.kind === "task_undelivered" && incidentId) {
      openIncident(incidentId);
      return;
    }
    base.flyTo(alert.lon, alert.lat);
    if (people.people.has(alert.person_id)) people.selectPerson(alert.person_id);
  }

  async function load() {
    let url = "/api/v1/alerts?limit=100";
    if (filter.kind) url += `&kind=${encodeURIComponent(filter.kind)}`;
    if (filter.open) url += "&open=1";
    alerts = (await getJson(url)).alerts;
    render();
  }

  async function loadOpenCount() {
    const answer = await getJson("/api/v1/alerts?open=1&limit=1000");
    const badge = document.getElementById("alert-count");
    badge.textContent = answer.alerts.length;
    badge.hidden = answer.alerts.length === 0;
    badge.classList.toggle("sos", answer.alerts.some((a) => a.kind === "sos"));
  }

  function render() {
    const list = document.getElementById("alert-list");
    list.replaceChildren();
    document.getElementById("alert-empty").hidden = alerts.length > 0;
    for (const alert of alerts) {
      const li = el("li", `alert-item kind-${alert.kind}`);
      li.dataset.alertId = alert.id;
      li.dataset.kind = alert.kind;
      li.dataset.acknowledged = alert.acknowledged_at ? "1" : "0";
      if (freshIds.has(alert.id)) li.classList.add("fresh");
      li.style.setProperty("--kind", ALERT_COLORS[alert.kind] || "#66717d");
      const top = el("div", "alert-top");
      top.append(el("span", "kind-badge", kindLabel(alert.kind)));
      top.append(el("strong", "alert-person", alert.person_name || personName(alert.person_id)));
      top.append(el("time", "muted small", clock(alert.ts)));
      li.append(top);
      const facts = alertFacts(alert);
      if (facts) li.append(el("p", "alert-facts", facts));
      if (alert.note) li.append(el("p", "alert-note", alert.note));
      const foot = el("div", "alert-foot");
      if (alert.acknowledged_at) {
        foot.append(el("span", "acked", t("alert.acknowledged_by", {
          user: alert.acknowledged_by || t("none"), time: clock(alert.acknowledged_at),
        })));
      } else {
        foot.append(el("span", "muted small", t("alert.open")));
        if (canDispatch) {
          const ack = el("button", "small-button ack", t("alert.acknowledge"));
          ack.type = "button";
          ack.addEventListener("click", (event) => {
            event.stopPropagation();
            acknowledge(alert.id, ack);
          });
          foot.append(ack);
        }
      }
      if (alert.lat == null && alert.kind !== "task_undelivered") foot.append(el("span", "muted small", t("alert.no_location")));
      li.append(foot);
      li.addEventListener("click", () => follow(alert));
      list.append(li);
    }
  }

  async function acknowledge(alertId, ack) {
    ack.disabled = true;
    try {
      await sendJson("POST", `/api/v1/alerts/${alertId}/acknowledge`, {});
    } catch (error) {
      toast({ kind: "error", title: t("alert.ack_failed"), body: error.message });
    }
    await Promise.all([load(), loadOpenCount()]);
  }

  document.getElementById("alert-kind").addEventListener("change", (event) => {
    filter.kind = event.target.value;
    load();
  });
  for (const choice of document.querySelectorAll("[data-alert-open]")) {
    choice.addEventListener("click", () => {
      filter.open = choice.dataset.alertOpen === "1";
      for (const b of document.querySelectorAll("[data-alert-open]")) b.classList.toggle("active", b === choice);
      load();
    });
  }

  socket.on("alert", async (alert) => {
    freshIds.add(alert.id);
    setTimeout(() => {
      freshIds.delete(alert.id);
      document.querySelector(`[data-alert-id="${alert.id}"]`)?.classList.remove("fresh");
    }, 10000);
    beep(alert.kind);
    flashTab("alerts");
    loadOpenCount();
    if (alert.kind !== "low_battery" && alert.kind !== "sos" && alert.kind !== "task_undelivered") onZoneAlert();
    // The pushed alert carries ids only: the reloaded list names the person.
    await load().catch(() => {});
    const listed = alerts.find((a) => a.id === alert.id);
    toast({
      kind: alert.kind,
      color: ALERT_COLORS[alert.kind],
      title: `${kindLabel(alert.kind)} · ${personName(alert.person_id, listed?.person_name)}`,
      body: [clock(alert.ts), alertText(listed || alert)].filter(Boolean).join(" · "),
      onClick: () => {
        showTab("alerts");
        follow(listed || alert);
      },
    });
  });

  socket.on("connect", () => {
    load();
    loadOpenCount();
  });

  return { alerts: () => alerts.slice(), reload: load };
}
