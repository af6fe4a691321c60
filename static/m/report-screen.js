// The event report form (事件上报) and the person's own reports on the main screen.
"use strict";

import { t, translatePage } from "./i18n.js";
import { MAX_PHOTOS, resizePhoto } from "./reports.js";

const $ = (id) => document.getElementById(id);

export class ReportScreen {
  /**
   * @param {object} options
   * @param {import("./reports.js").Reports} options.reports
   * @param {{id: string}[]} options.categories
   * @param {(id: string) => string} options.categoryLabel
   * @param {() => ({lat: number, lon: number}|null)} options.position  the phone's last fix
   * @param {() => Promise<unknown>} options.refreshPosition  ask the GPS once
   * @param {(screen: string) => void} options.showScreen
   */
  constructor({ reports, categories, categoryLabel, position, refreshPosition, showScreen }) {
    Object.assign(this, { reports, categoryLabel, position, refreshPosition, showScreen });
    this.files = [];
    this.previewUrls = [];
    this.busy = false;
    $("report-category").replaceChildren(
      ...categories.map((c) => new Option(categoryLabel(c.id), c.id)),
    );
    $("report-back").addEventListener("click", () => this.close());
    $("report-photos").addEventListener("change", (event) => {
      // Photos add up: a camera gives one photo per pick.
      this.files = [...this.files, ...event.target.files].slice(0, MAX_PHOTOS);
      event.target.value = "";
      this.error("");
      this.renderPreviews();
    });
    $("report-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  async open() {
    this.files = [];
    $("report-note").value = "";
    this.error("");
    this.renderPreviews();
    this.showScreen("report");
    this.renderPosition();
    await this.refreshPosition();
    this.renderPosition();
  }

  close() {
    this.files = [];
    this.renderPreviews();
    this.showScreen("main");
  }

  error(text) {
    $("report-error").hidden = !text;
    $("report-error").textContent = text;
  }

  renderPosition() {
    $("report-position").textContent = t(
      this.position() ? "report_with_position" : "report_without_position",
    );
  }

  renderPreviews() {
    for (const url of this.previewUrls) URL.revokeObjectURL(url);
    this.previewUrls = this.files.map((file) => URL.createObjectURL(file));
    $("report-previews").replaceChildren(
      ...this.files.map((file, index) => {
        const item = document.createElement("button");
        item.type = "button";
        item.className = "preview";
        item.title = file.name;
        const img = document.createElement("img");
        img.src = this.previewUrls[index];
        img.alt = file.name;
        item.append(img);
        item.addEventListener("click", () => {
          this.files.splice(index, 1);
          this.renderPreviews();
        });
        return item;
      }),
    );
    $("report-photos").disabled = this.files.length >= MAX_PHOTOS;
  }

  async submit() {
    if (this.busy) return;
    const note = $("report-note").value.trim();
    if (!note) return this.error(t("report_need_note"));
    if (this.files.length < 1 || this.files.length > MAX_PHOTOS) {
      return this.error(t("report_need_photos"));
    }
    this.busy = true;
    $("report-submit").disabled = true;
    this.error("");
    $("report-position").textContent = t("report_preparing");
    try {
      const photos = [];
      for (const file of this.files) {
        try {
          photos.push(await resizePhoto(file));
        } catch (err) {
          console.warn("photo not decoded", err);
          return this.error(t("report_bad_photo", { name: file.name }));
        }
      }
      await this.reports.submit({
        category: $("report-category").value,
        note,
        photos,
        position: this.position(),
      });
      this.close();
    } finally {
      this.busy = false;
      $("report-submit").disabled = false;
      this.renderPosition();
    }
  }

  renderList() {
    const { queued, mine, refused } = this.reports;
    const count = $("reports-queued");
    count.hidden = queued.length === 0;
    count.textContent = t("reports_queued", { n: queued.length });
    $("report-refused").replaceChildren(
      ...refused.map((r) => {
        const banner = document.createElement("p");
        banner.className = "banner banner-danger";
        banner.textContent = t("report_refused", { error: r.error, note: r.note });
        const ok = document.createElement("button");
        ok.type = "button";
        ok.className = "link";
        ok.textContent = t("dismiss");
        ok.addEventListener("click", () => this.reports.dismissRefused());
        banner.append(" ", ok);
        return banner;
      }),
    );
    const rows = [
      ...queued.map((r) => ({ ...r, status: "queued" })),
      ...mine.filter((r) => !queued.some((q) => q.key === r.key)),
    ];
    const list = $("reports");
    list.hidden = rows.length === 0;
    list.replaceChildren(
      ...rows.slice(0, 20).map((r) => {
        const row = $("report-template").content.firstElementChild.cloneNode(true);
        translatePage(row);
        row.dataset.key = r.key;
        row.querySelector(".report-category").textContent = this.categoryLabel(r.category);
        const status = row.querySelector(".report-status");
        status.textContent = t(`report_status_${r.status}`);
        status.classList.add(`status-${r.status}`);
        row.querySelector(".report-note").textContent = r.note || "";
        return row;
      }),
    );
  }
}
