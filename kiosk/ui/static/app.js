// The screen shows the session state the service pushes (Server-Sent Events) and posts what the
// citizen touches; it decides nothing itself. Tap safety: every touch names the screen it was made
// on (the session drops it if that screen is gone), input is ignored for GUARD_MS after a screen
// changes or a dialog appears, and a button stays disabled while its request is in flight.
"use strict";
let labels = {};
let state = { state: "idle", lang: "zh" };
const GUARD_MS = 400;
let shown = null;           // the screen (state) last rendered
let guardUntil = 0;         // performance.now() before which touches are ignored
let warnDeadline = null;    // performance.now() when the announced timeout fires
const busy = new Set();     // buttons whose request is in flight
// the step indicator: which step each state belongs to (证件 → 须知 → 拍照 → 确认 → 回执)
const STEPS = { choose: "choose", consent: "notice", requirements: "notice", guidance: "photo",
                countdown: "photo", capture: "photo", review: "review", handover: "review", done: "done" };
const STEP_ORDER = ["choose", "notice", "photo", "review", "done"];
const LIVE = ["guidance", "countdown"];
const BLANK = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";  // what an image shows when it shows nothing
const NUMBER_GROUPS = [4, 4, 4, 4, 4, 2];  // the 22-digit image number as it is read out

function post(name, data, button) {
  if (button) { busy.add(button); button.disabled = true; }
  const body = Object.assign({ name: name, on: state.state }, data || {});
  return fetch("/event", { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify(body) })
    .catch(() => null)
    .finally(() => { if (button) { busy.delete(button); render(); } });
}

function t(key, fields) {
  const entry = labels[key];
  let s = entry ? entry[state.lang] || entry.zh : "";
  for (const [k, v] of Object.entries(fields || {})) s = s.split("{" + k + "}").join(v);
  return s;
}

function text(obj) {
  return obj ? obj[state.lang] || obj.zh || "" : "";
}

function grouped(number) {
  const out = [];
  let i = 0;
  const sizes = number.length === 22 ? NUMBER_GROUPS : Array(Math.ceil(number.length / 4)).fill(4);
  for (const n of sizes) { if (i < number.length) out.push(number.slice(i, i + n)); i += n; }
  return out.join(" ");
}

function cityNames() {
  return Object.assign({}, ...(state.documents || []).map(d => d.city_names || {}));
}

function cityName(id) {
  const n = cityNames()[id];
  return n ? text(n) : id || "";
}

function docName(id) {
  const d = (state.documents || []).find(x => x.id === id);
  return d ? d[state.lang] || d.zh : "";
}

function serves(d, city) {
  return !d.cities.length || d.cities.includes(city);
}

// --- drawn example pictures (no real person): one face, dressed per requirement ------------------

function face(o) {
  const skin = "#f1c9a5", hair = "#3b2a20";
  const parts = ['<rect width="100" height="100" rx="10" fill="#e8eef5"/>',
    `<path d="M14,100 Q16,74 50,72 Q84,74 86,100Z" fill="${o.white ? "#ffffff" : "#3c5a78"}" stroke="#6b7b8c"/>`,
    `<rect x="43" y="62" width="14" height="14" fill="${skin}"/>`,
    `<ellipse cx="30" cy="47" rx="4" ry="7" fill="${skin}"/><ellipse cx="70" cy="47" rx="4" ry="7" fill="${skin}"/>`,
    `<ellipse cx="50" cy="45" rx="19" ry="24" fill="${skin}"/>`,
    `<path d="M30,42 Q29,18 50,18 Q71,18 70,42 Q67,28 50,28 Q33,28 30,42Z" fill="${hair}"/>`];
  if (o.fringe) parts.push(`<path d="M30,42 Q30,22 50,21 Q70,22 70,42 L70,55 L64,55 L64,40 L36,40 L36,55 L30,55Z" fill="${hair}"/>`,
                           `<path d="M32,29 Q50,25 68,29 L68,41 L32,41Z" fill="${hair}"/>`);
  parts.push('<path d="M38,37 L46,36 M54,36 L62,37" stroke="#3b2a20" stroke-width="2"/>',
             '<ellipse cx="42" cy="44" rx="3" ry="2.2" fill="#222"/><ellipse cx="58" cy="44" rx="3" ry="2.2" fill="#222"/>',
             '<path d="M50,46 L48,53 L52,53" fill="none" stroke="#c48d6a" stroke-width="1.5"/>');
  parts.push(o.smile ? '<path d="M41,57 Q50,68 59,57Z" fill="#fff" stroke="#8a3b2e" stroke-width="1.5"/>'
                     : '<path d="M44,59 L56,59" stroke="#8a3b2e" stroke-width="2"/>');
  if (o.glasses) {
    parts.push('<rect x="35" y="39" width="13" height="10" rx="3" fill="none" stroke="#222" stroke-width="1.8"/>',
               '<rect x="52" y="39" width="13" height="10" rx="3" fill="none" stroke="#222" stroke-width="1.8"/>',
               '<path d="M48,43 L52,43 M35,43 L31,42 M65,43 L69,42" stroke="#222" stroke-width="1.8"/>');
    if (o.glare) parts.push('<path d="M37,41 L43,41 L39,47Z M54,41 L61,41 L56,47Z" fill="#fff" opacity="0.95"/>');
  }
  if (o.hat) parts.push('<path d="M28,34 Q30,8 50,8 Q70,8 72,34Z" fill="#c0392b"/>',
                        '<path d="M22,34 L80,34" stroke="#8e2a20" stroke-width="5" stroke-linecap="round"/>');
  if (o.earrings) parts.push('<circle cx="29" cy="57" r="3.2" fill="#e1b12c" stroke="#9a7a10"/>',
                             '<circle cx="71" cy="57" r="3.2" fill="#e1b12c" stroke="#9a7a10"/>');
  if (o.clip) parts.push('<rect x="58" y="20" width="11" height="5" rx="2" fill="#e84393" transform="rotate(20 63 22)"/>');
  parts.push(o.bad
    ? '<circle cx="84" cy="16" r="12" fill="#a3001b"/><path d="M78,10 L90,22 M90,10 L78,22" stroke="#fff" stroke-width="3.5"/>'
    : '<circle cx="84" cy="16" r="12" fill="#1e7d3a"/><path d="M77,16 L82,21 L91,11" fill="none" stroke="#fff" stroke-width="3.5"/>');
  return `<svg viewBox="0 0 100 100" aria-hidden="true" focusable="false">${parts.join("")}</svg>`;
}

// requirement id -> the "don't" and the "do" picture
const REQ_PICTURES = {
  hat: [{ hat: true, bad: true }, {}],
  earrings: [{ earrings: true, clip: true, bad: true }, {}],
  hair: [{ fringe: true, bad: true }, {}],
  glasses: [{ glasses: true, glare: true, bad: true }, { glasses: true }],
  expression: [{ smile: true, bad: true }, {}],
  clothing: [{ white: true, bad: true }, {}],
};

function renderRequirements() {
  const box = document.getElementById("requirements");
  const ids = state.requirements || [];
  const key = ids.join(",") + "|" + state.lang;
  if (box.dataset.key === key) return;
  box.innerHTML = "";
  for (const id of ids) {
    const li = document.createElement("li");
    const pics = REQ_PICTURES[id] || [{}, {}];
    li.innerHTML = `<div class="pics">${face(pics[0])}${face(pics[1])}</div>`;
    const say = document.createElement("p");
    say.className = "say";
    say.textContent = t("req." + id);
    li.appendChild(say);
    box.appendChild(li);
  }
  box.dataset.key = key;
}

// --- arrows over the mirrored preview ("left" is the citizen's left) ------------------------------

const ARROW = '<polygon points="8,40 62,40 62,18 94,50 62,82 62,60 8,60" fill="#ffd400" stroke="#000" stroke-width="3"/>';
const CURVE = '<path d="M18,70 Q50,20 80,52" fill="none" stroke="#ffd400" stroke-width="11" stroke-linecap="round"/>' +
              '<polygon points="66,40 94,62 70,72" fill="#ffd400" stroke="#000" stroke-width="2"/>';
const ARROWS = {
  right: `<g>${ARROW}</g>`, left: `<g transform="rotate(180 50 50)">${ARROW}</g>`,
  up: `<g transform="rotate(270 50 50)">${ARROW}</g>`, down: `<g transform="rotate(90 50 50)">${ARROW}</g>`,
  chin_up: `<g transform="rotate(270 50 50)">${ARROW}</g>`, chin_down: `<g transform="rotate(90 50 50)">${ARROW}</g>`,
  turn_right: `<g>${CURVE}</g>`, turn_left: `<g transform="translate(100 0) scale(-1 1)">${CURVE}</g>`,
  tilt_right: `<g transform="rotate(60 50 50)">${CURVE}</g>`,
  tilt_left: `<g transform="translate(100 0) scale(-1 1) rotate(60 50 50)">${CURVE}</g>`,
  // closer: arrows outward (the face grows); back: arrows inward
  closer: `<g transform="translate(50 25) scale(0.5)">${ARROW}</g><g transform="translate(50 75) rotate(180) scale(0.5)">${ARROW}</g>`,
  back: `<g transform="translate(3 25) scale(0.5)">${ARROW}</g><g transform="translate(97 75) rotate(180) scale(0.5)">${ARROW}</g>`,
};

function renderArrow(name) {
  const box = document.getElementById("arrow");
  const svg = ARROWS[name];
  box.hidden = !svg;
  if (svg && box.dataset.name !== name) {
    box.innerHTML = `<svg viewBox="0 0 100 100" aria-hidden="true" focusable="false">${svg}</svg>`;
    box.dataset.name = name;
  }
}

// --- screens ------------------------------------------------------------------------------------------

function renderChoose() {
  const box = document.getElementById("documents");
  const docs = state.documents || [];
  const ids = docs.map(d => d.id).join(",");
  if (box.dataset.ids !== ids) {
    box.innerHTML = "";
    for (const d of docs) {
      const b = document.createElement("button");
      b.className = "doc";
      b.dataset.id = d.id;
      b.innerHTML = '<span class="name"></span><span class="why"></span>';
      b.addEventListener("click", () => post("select", { profile: d.id }, b));
      box.appendChild(b);
    }
    box.dataset.ids = ids;
  }
  for (const b of box.querySelectorAll("button.doc")) {
    const d = docs.find(x => x.id === b.dataset.id);
    const ok = serves(d, state.city);
    b.querySelector(".name").textContent = d[state.lang] || d.zh;
    b.querySelector(".why").textContent = ok ? "" : t("not_here", { city: cityName(state.city) });
    b.disabled = !ok || busy.has(b);
    b.setAttribute("aria-pressed", String(state.profile === d.id));
  }
  document.getElementById("next").disabled = !state.profile || busy.has(document.getElementById("next"));
  // the city of the receipt: every city of the terminal, the home city on top, the others in their
  // region's section (optgroup); its value is the session's, reset to the home city for each citizen
  const names = cityNames();
  const cities = [...new Set(docs.flatMap(d => d.cities))];
  if (state.home_city && cities.includes(state.home_city)) {
    cities.splice(cities.indexOf(state.home_city), 1);
    cities.unshift(state.home_city);
  }
  document.querySelector(".city-box").hidden = cities.length === 0;
  const sel = document.getElementById("city");
  const key = cities.join(",") + "|" + state.lang;
  if (sel.dataset.key !== key) {
    sel.innerHTML = "";
    const sections = new Map();
    cities.forEach((c, i) => {
      const o = document.createElement("option");
      o.value = c;
      o.textContent = names[c] ? text(names[c]) : c;
      const group = i > 0 && names[c] && names[c].group ? text(names[c].group) : "";
      if (!group) { sel.appendChild(o); return; }
      if (!sections.has(group)) {
        const g = document.createElement("optgroup");
        g.label = group;
        sections.set(group, g);
        sel.appendChild(g);
      }
      sections.get(group).appendChild(o);
    });
    sel.dataset.key = key;
  }
  if (state.city && sel.value !== state.city && document.activeElement !== sel) sel.value = state.city;
}

function renderGuidance() {
  const g = state.guidance;
  document.body.classList.toggle("ready", !!(g && g.ready));
  document.getElementById("prompt").textContent = g ? text(g.text) : "";
  const outline = document.getElementById("outline");
  outline.setAttribute("points", g && g.outline ? g.outline.map(p => p[0] + "," + p[1]).join(" ") : "");
  if (g && g.target) {
    const e = document.getElementById("target");
    const rx = g.target.face_width / 2;
    e.setAttribute("cx", g.target.x);
    e.setAttribute("cy", g.target.eye_y + 0.06);
    e.setAttribute("rx", rx);
    e.setAttribute("ry", rx * 1.33 * 1.4);  // frame aspect 4:3, a face is about 1.4 times as high as wide
  }
  const cd = document.getElementById("countdown");
  cd.hidden = state.countdown === null || state.countdown === undefined;
  if (!cd.hidden) cd.textContent = Math.max(1, Math.ceil(state.countdown));
  const refused = document.getElementById("refused");
  refused.hidden = !(state.message && state.state === "guidance");
  refused.textContent = state.message ? t("photo_refused") + " " + text(state.message) : "";
  const h = state.state === "guidance" ? state.hint : null;
  const hint = document.getElementById("hint");
  hint.hidden = !(h && h.text);
  hint.textContent = h && h.text ? text(h.text) : "";
  renderArrow(h ? h.arrow : "");
  document.getElementById("call-staff").hidden = !(h && h.staff && !h.staff_called);
  document.getElementById("staff-called").hidden = !(h && h.staff_called);
}

// --- the returning citizen: scan, review state, free retake (no photo, no personal data) ----------

function renderScan() {
  const s = state.scan || {};
  const hint = document.getElementById("scan-hint");
  hint.hidden = !(state.state === "scan" && s.hint);
  hint.textContent = s.hint ? text(s.hint) : "";
  document.getElementById("scan-reading").hidden = state.state !== "lookup";
  const r = s.review || null;
  document.getElementById("scanned-number").textContent = s.number ? grouped(s.number) : "";
  document.getElementById("scanned-state").textContent = r ? t("review_state." + r.state) : "";
  const dl = document.getElementById("scanned-fields");
  dl.innerHTML = "";
  if (r) {
    const rows = [["document", text(r.document)], ["city", r.city_name ? text(r.city_name) : r.city],
                  ["issued", r.issued], ["decided", r.decided], ["expected", r.expected_by],
                  ["reason", r.reason_text ? text(r.reason_text) : ""]];
    for (const [k, v] of rows) {
      if (!v) continue;
      const dt = document.createElement("dt"); dt.textContent = t("review_field." + k);
      const dd = document.createElement("dd"); dd.textContent = v;
      dl.append(dt, dd);
    }
  }
  document.getElementById("scanned-text").textContent = r ? text(r.text) : "";
  const refused = document.getElementById("scanned-refused");
  refused.hidden = !s.message;
  refused.textContent = s.message ? text(s.message) : "";
  const retake = document.getElementById("free-retake");
  retake.hidden = !(r && r.retake);
  document.getElementById("scanned-again").hidden = !(s.refused && s.refused !== "no_platform");
}

function renderHeader() {
  const step = STEPS[state.state];
  const at = STEP_ORDER.indexOf(step);
  for (const li of document.querySelectorAll("#steps li")) {
    const i = STEP_ORDER.indexOf(li.dataset.step);
    li.classList.toggle("current", i === at);
    li.classList.toggle("done", at >= 0 && i < at);
    if (i === at) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
  }
  // the chosen document and city on every screen after the choice
  const after = ["consent", "requirements", "guidance", "countdown", "capture", "review", "handover", "done"];
  const parts = after.includes(state.state) ? [docName(state.profile), cityName(state.city)].filter(Boolean) : [];
  if (state.retake_of && after.includes(state.state)) parts.push(t("retake_mark") + " " + grouped(state.retake_of));
  document.getElementById("summary").textContent = parts.join(" · ");
  for (const b of document.querySelectorAll("button.lang")) b.classList.toggle("active", b.dataset.lang === state.lang);
}

function renderWarning() {
  const w = state.warning;
  const box = document.getElementById("warning");
  const was = !box.hidden;
  warnDeadline = w ? performance.now() + w.remaining_s * 1000 : null;
  box.hidden = !w;
  if (w && !was) guardUntil = performance.now() + GUARD_MS;  // the dialog appeared under a finger
  tick();
}

function tick() {
  if (warnDeadline === null) return;
  const left = Math.max(0, Math.ceil((warnDeadline - performance.now()) / 1000));
  document.getElementById("warning-seconds").textContent = left;
}

function render() {
  if (shown !== state.state) { shown = state.state; guardUntil = performance.now() + GUARD_MS; }
  document.body.dataset.state = state.state;
  document.body.classList.toggle("large", !!state.large_text);
  document.documentElement.lang = state.lang === "en" ? "en" : "zh";
  for (const el of document.querySelectorAll("[data-label]")) el.textContent = t(el.dataset.label);
  // a button is disabled while its request is in flight (below: also when it means nothing now)
  for (const b of document.querySelectorAll("button")) b.disabled = busy.has(b);
  renderHeader();
  renderChoose();
  renderRequirements();
  renderGuidance();
  const large = document.getElementById("large-text");
  large.setAttribute("aria-pressed", String(!!state.large_text));
  renderScan();
  const live = LIVE.includes(state.state) || state.state === "review";
  // one MJPEG stream at a time: an image whose src is only removed keeps its multipart request open
  // in Chromium, and a handful of those exhaust the connections the page may open (touches then hang)
  for (const id of ["preview", "live-review"]) {
    const img = document.getElementById(id);
    const want = live && ((id === "preview") !== (state.state === "review")) ? "/preview.mjpg" : BLANK;
    if (img.getAttribute("src") !== want) img.setAttribute("src", want);
  }
  const final = document.getElementById("final");
  if (state.photo && final.getAttribute("src") !== state.photo.url) final.setAttribute("src", state.photo.url);
  if (!state.photo && final.getAttribute("src") !== BLANK) final.setAttribute("src", BLANK);
  document.getElementById("retakes-left").textContent = state.retakes_left;
  const retake = document.getElementById("retake");
  retake.disabled = !(state.retakes_left > 0) || busy.has(retake);
  const r = state.result;
  document.getElementById("done-label").textContent = r && r.number ? t("number") : "";
  document.getElementById("done-detail").textContent = r ? (r.number ? grouped(r.number) : t("done_photo")) : "";
  let fault = r && !r.printed && r.message_zh ? text({ zh: r.message_zh, en: r.message_en }) : "";
  if (r && r.retake && r.failed) fault = text(r.message);  // the free retake did not reach the platform
  const doneFault = document.getElementById("done-fault");
  doneFault.hidden = !fault;
  doneFault.textContent = fault;
  document.getElementById("done-take").hidden = !(r && r.number && r.printed);
  if (r && r.retake && !r.failed) document.getElementById("done-take").textContent = text(r.message);
  const idleMsg = document.getElementById("idle-message");
  idleMsg.hidden = !(state.state === "idle" && state.message);
  idleMsg.textContent = state.state === "idle" && state.message ? text(state.message) : "";
  const ended = document.getElementById("ended-message");
  ended.hidden = !(state.state === "idle" && state.ended);
  ended.textContent = state.ended ? text(state.ended) : "";
  document.getElementById("failsafe-message").textContent = state.message ? text(state.message) : "";
  renderWarning();
  for (const b of busy) b.disabled = true;
}

function connect() {
  const es = new EventSource("/events");
  es.onmessage = ev => { state = JSON.parse(ev.data); render(); };
  es.onerror = () => { es.close(); setTimeout(connect, 1000); };
}

// Touches: ignored for GUARD_MS after the screen changed (the second tap of a double tap lands on
// the next screen), then sent with the screen they were made on.
document.addEventListener("click", ev => {
  if (performance.now() < guardUntil) { ev.stopPropagation(); ev.preventDefault(); }
}, true);
document.addEventListener("click", ev => {
  const b = ev.target.closest("button[data-event]");
  if (b && !b.disabled) post(b.dataset.event, null, b);
  const l = ev.target.closest("button.lang");
  if (l) post("lang", { lang: l.dataset.lang });
  if (ev.target.closest("#large-text")) post("large_text", null, document.getElementById("large-text"));
});
document.getElementById("city").addEventListener("change", ev => post("select", { city: ev.target.value }));
setInterval(tick, 200);

fetch("/labels.json").then(r => r.json()).then(l => { labels = l; render(); connect(); });
