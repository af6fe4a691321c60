// The phone app's messages in Chinese and English; the phone's language picks one.
"use strict";

const MESSAGES = {
  en: {
    app_name: "Patrol tracker",
    connected: "Connected",
    connecting: "Connecting…",
    offline: "Offline",
    revoked: "This phone's pairing was revoked",
    not_paired_title: "This phone is not paired yet",
    not_paired_body:
      "Ask your coordinator for a pairing link or QR code and open it on this phone. Or paste the device token here:",
    token_placeholder: "Device token",
    pair: "Pair this phone",
    unpair: "Unpair this phone",
    unpair_confirm: "Unpair this phone? It will stop reporting until it is paired again.",
    unpair_confirm_queued:
      "Unpair this phone? {n} fixes not yet sent will be deleted and it will stop reporting.",
    repair_confirm_queued:
      "A new pairing link was opened. {n} fixes of the previous pairing are not sent yet and will be deleted. Continue?",
    on_duty: "On duty",
    off_duty: "Off duty",
    go_on_duty: "Go on duty",
    go_off_duty: "Go off duty",
    duty_pending: "Will be sent when connected",
    last_fix: "Last fix",
    no_fix_yet: "Waiting for GPS…",
    accuracy: "±{m} m",
    queued: "Waiting to send",
    battery: "Battery",
    charging: "charging",
    unknown: "—",
    rejected: "{n} fixes refused by the server and dropped",
    capped:
      "Offline storage was full: the {n} oldest fixes were deleted to keep the newest.",
    background_title: "Keep this screen open",
    background_body:
      "Browsers pause location when the app is in the background or the screen is off. For tracking with the screen off, use a GPS app instead:",
    background_native:
      "Traccar Client (Android, iPhone): set the server URL to the address below. OsmAnd, GPSLogger, OwnTracks and Overland work too; see docs/phone-app.md.",
    geo_denied: "Location permission is denied. Allow it in the browser settings.",
    geo_unavailable: "This browser cannot report location.",
    sos: "SOS",
    sos_hold: "Hold 2 s",
    sos_note_placeholder: "What happened? (optional)",
    sos_sending: "SOS sending… will retry until received",
    sos_received: "SOS received by the command centre at {t}",
    task_title: "New task",
    task_dismiss: "OK",
    task_accepted: "Accept",
    task_done: "Done",
    task_distance: "About {m} m from you",
    help: "Help",
  },
  zh: {
    app_name: "巡防定位",
    connected: "已连接",
    connecting: "正在连接…",
    offline: "离线",
    revoked: "此手机的配对已被撤销",
    not_paired_title: "此手机尚未配对",
    not_paired_body: "请向负责人索取配对链接或二维码，并在此手机上打开。也可以在此粘贴设备令牌：",
    token_placeholder: "设备令牌",
    pair: "配对此手机",
    unpair: "解除配对",
    unpair_confirm: "确定解除配对吗？重新配对前将停止上报位置。",
    unpair_confirm_queued: "确定解除配对吗？尚未发送的 {n} 个定位点将被删除，并停止上报位置。",
    repair_confirm_queued: "打开了新的配对链接。上一次配对还有 {n} 个定位点未发送，将被删除。继续吗？",
    on_duty: "执勤中",
    off_duty: "未执勤",
    go_on_duty: "开始执勤",
    go_off_duty: "结束执勤",
    duty_pending: "连接后发送",
    last_fix: "最近定位",
    no_fix_yet: "等待GPS…",
    accuracy: "±{m} 米",
    queued: "待发送",
    battery: "电量",
    charging: "充电中",
    unknown: "—",
    rejected: "{n} 个定位点被服务器拒收，已丢弃",
    capped: "离线存储已满：已删除最早的 {n} 个定位点，保留最新的。",
    background_title: "请保持此页面在前台",
    background_body: "应用在后台或熄屏时，浏览器会暂停定位。如需熄屏时持续定位，请改用定位应用：",
    background_native:
      "Traccar Client（安卓、苹果）：把服务器地址设为下面的地址。OsmAnd、GPSLogger、OwnTracks 和 Overland 也可以，见 docs/phone-app.md。",
    geo_denied: "定位权限被拒绝，请在浏览器设置中允许。",
    geo_unavailable: "此浏览器无法提供定位。",
    sos: "求助",
    sos_hold: "按住 2 秒求助",
    sos_note_placeholder: "发生了什么？（可不填）",
    sos_sending: "求助发送中…收到前会一直重试",
    sos_received: "指挥中心已于 {t} 收到求助",
    task_title: "新任务",
    task_dismiss: "知道了",
    task_accepted: "接受",
    task_done: "已完成",
    task_distance: "距离你约 {m} 米",
    help: "帮助",
  },
};

function pickLanguage(languages) {
  for (const tag of languages) {
    const lang = String(tag || "").toLowerCase().split("-")[0];
    if (lang in MESSAGES) return lang;
  }
  return "en";
}

export const LANG = pickLanguage(
  [localStorage.getItem("tracker.lang"), ...(navigator.languages || []), navigator.language].filter(
    Boolean,
  ),
);

export function t(key, params = {}) {
  const text = MESSAGES[LANG][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export function translatePage(root = document) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}
