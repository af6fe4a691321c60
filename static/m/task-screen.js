// The task cards on the main screen and the task screen: status, place on a small map,
// distance, and the answers valid in the task's state.
"use strict";

import { distanceM } from "./geo.js";
import { t, translatePage } from "./i18n.js";
import { ACTIONS } from "./tasks.js";
import { TaskMap } from "./taskmap.js";

const $ = (id) => document.getElementById(id);
const BUTTONS = { accepted: "task-accept", declined: "task-decline", done: "task-done" };

function distanceText(task, own) {
  let metres = task.distance_m;
  if (own && Number.isFinite(task.lat) && Number.isFinite(task.lon)) metres = distanceM(own, task);
  if (!Number.isFinite(metres)) return t("task_no_position");
  if (metres >= 1000) return t("task_distance_km", { km: (metres / 1000).toFixed(1) });
  return t("task_distance", { m: Math.round(metres) });
}

function statusLabel(el, status) {
  el.textContent = t(`task_status_${status}`);
  for (const name of [...el.classList]) {
    if (name.startsWith("status-") && name !== "status-label") el.classList.remove(name);
  }
  el.classList.add(`status-${status}`);
}

export class TaskScreen {
  /**
   * @param {object} options
   * @param {import("./tasks.js").Tasks} options.tasks
   * @param {(id: string) => string} options.categoryLabel
   * @param {() => ({lat: number, lon: number}|null)} options.position  the phone's last position
   * @param {() => Promise<unknown>} options.refreshPosition  ask the GPS once
   * @param {(screen: string) => void} options.showScreen
   */
  constructor({ tasks, categoryLabel, position, refreshPosition, showScreen }) {
    Object.assign(this, { tasks, categoryLabel, position, refreshPosition, showScreen });
    this.openId = null;
    this.map = new TaskMap($("task-map"));
    this.mapShown = null; // what the map shows, for the tests: ["task", "me"]
    $("task-back").addEventListener("click", () => this.close());
    $("task-accept").addEventListener("click", () => this.answer("accepted"));
    $("task-done").addEventListener("click", () => this.answer("done"));
    $("task-decline").addEventListener("click", () => {
      $("decline-form").hidden = false;
      $("task-buttons").hidden = true;
      $("decline-reason").focus();
    });
    $("decline-cancel").addEventListener("click", () => this.closeDecline());
    $("decline-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.answer("declined", $("decline-reason").value.trim());
    });
  }

  task() {
    return this.openId === null ? null : this.tasks.byId(this.openId);
  }

  async open(id) {
    this.openId = id;
    this.closeDecline();
    this.showScreen("task");
    this.render();
    this.drawMap();
    await this.refreshPosition();
    this.render();
    this.drawMap();
  }

  close() {
    this.openId = null;
    this.showScreen("main");
  }

  closeDecline() {
    $("decline-form").hidden = true;
    $("decline-reason").value = "";
    $("task-buttons").hidden = false;
  }

  async answer(status, note) {
    const task = this.task();
    if (!task) return;
    this.closeDecline();
    await this.tasks.answer(task, status, note);
    this.render();
  }

  async drawMap() {
    const task = this.task();
    if (!task) return;
    try {
      this.mapShown = await this.map.show(task, this.position());
    } catch (err) {
      console.warn("task map not shown", err);
      $("task-map").textContent = t("map_unavailable");
    }
  }

  renderList(container) {
    const tasks = this.tasks.list();
    container.parentElement.hidden = tasks.length === 0;
    const own = this.position();
    container.replaceChildren(
      ...tasks.map((task) => {
        const card = $("task-template").content.firstElementChild.cloneNode(true);
        translatePage(card);
        const status = this.tasks.status(task);
        card.dataset.taskId = String(task.id);
        card.classList.add(`task-${status}`);
        statusLabel(card.querySelector(".task-status"), status);
        card.querySelector(".task-category").textContent = this.categoryLabel(task.category);
        card.querySelector(".task-title").textContent = task.description || "";
        card.querySelector(".task-body").textContent = distanceText(task, own);
        card.querySelector(".task-open").addEventListener("click", () => this.open(task.id));
        return card;
      }),
    );
  }

  render() {
    const task = this.task();
    if (!task) return;
    const status = this.tasks.status(task);
    statusLabel($("task-status"), status);
    $("task-sending").hidden = !this.tasks.isSending(task);
    $("task-description").textContent = task.description || "";
    $("task-category").textContent = this.categoryLabel(task.category);
    const sentAt = Date.parse(task.assigned_at);
    $("task-sent-at").textContent = Number.isFinite(sentAt)
      ? t("task_sent_at", { t: new Date(sentAt).toLocaleString() })
      : "";
    $("task-note").textContent = task.note ? t("task_note", { note: task.note }) : "";
    $("task-distance").textContent = distanceText(task, this.position());
    const error = this.tasks.errors[task.id];
    $("task-error").hidden = !error;
    $("task-error").textContent = error ? t("task_refused", { error }) : "";
    const valid = ACTIONS[status] || [];
    for (const [answer, id] of Object.entries(BUTTONS)) $(id).hidden = !valid.includes(answer);
    if (!valid.includes("declined")) this.closeDecline();
    $("task-buttons").hidden = valid.length === 0 || !$("decline-form").hidden;
  }
}
