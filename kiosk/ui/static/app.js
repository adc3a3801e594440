// The screen shows the session state the service pushes (Server-Sent Events) and posts what the
// citizen touches; it decides nothing itself.
"use strict";
let labels = {};
let state = { state: "idle", lang: "zh" };

function post(name, data) {
  return fetch("/event", { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify(Object.assign({ name: name }, data || {})) });
}

function t(key) {
  const entry = labels[key];
  return entry ? entry[state.lang] || entry.zh : "";
}

function text(obj) {
  return obj ? obj[state.lang] || obj.zh || "" : "";
}

function renderDocuments() {
  const box = document.getElementById("documents");
  const ids = (state.documents || []).map(d => d.id).join(",");
  if (box.dataset.ids !== ids) {
    box.innerHTML = "";
    for (const d of state.documents || []) {
      const b = document.createElement("button");
      b.className = "big doc";
      b.dataset.id = d.id;
      b.addEventListener("click", () => {
        const sel = document.getElementById("city");
        post("choose", { profile: d.id, city: d.cities.length ? sel.value : "" });
      });
      box.appendChild(b);
    }
    box.dataset.ids = ids;
  }
  for (const b of box.querySelectorAll("button.doc")) {
    const d = state.documents.find(x => x.id === b.dataset.id);
    b.textContent = d[state.lang] || d.zh;
  }
  const names = Object.assign({}, ...(state.documents || []).map(d => d.city_names || {}));
  const cities = [...new Set((state.documents || []).flatMap(d => d.cities))];
  const row = document.getElementById("city-row");
  row.hidden = cities.length === 0;
  const sel = document.getElementById("city");
  const key = cities.join(",") + "|" + state.lang;
  if (sel.dataset.key !== key) {  // value = city id, text = its name in the chosen language
    // the home city (first in the list) on top, the others in their region's section (optgroup)
    const chosen = sel.value;
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
    if (cities.includes(chosen)) sel.value = chosen;
    sel.dataset.key = key;
  }
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
}

function render() {
  document.body.dataset.state = state.state;
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-label]")) el.textContent = t(el.dataset.label);
  for (const b of document.querySelectorAll("button.lang")) b.classList.toggle("active", b.dataset.lang === state.lang);
  renderDocuments();
  renderGuidance();
  const live = state.state === "guidance" || state.state === "countdown" || state.state === "review";
  for (const id of ["preview", "live-review"]) {
    const img = document.getElementById(id);
    const want = live && ((id === "preview") !== (state.state === "review")) ? "/preview.mjpg" : "";
    if ((img.getAttribute("src") || "") !== want) { if (want) img.setAttribute("src", want); else img.removeAttribute("src"); }
  }
  const final = document.getElementById("final");
  if (state.photo && final.getAttribute("src") !== state.photo.url) final.setAttribute("src", state.photo.url);
  if (!state.photo) final.removeAttribute("src");
  document.getElementById("retakes-left").textContent = state.retakes_left;
  document.getElementById("retake").disabled = !(state.retakes_left > 0);
  const r = state.result;
  document.getElementById("done-detail").textContent =
    r ? (r.number ? t("number") + " " + r.number : t("done_photo")) : "";
  const fault = r && !r.printed && r.message_zh ? text({ zh: r.message_zh, en: r.message_en }) : "";
  const doneFault = document.getElementById("done-fault");
  doneFault.hidden = !fault;
  doneFault.textContent = fault;
  document.getElementById("done-take").hidden = !(r && r.number && r.printed);
  const idleMsg = document.getElementById("idle-message");
  idleMsg.hidden = !(state.state === "idle" && state.message);
  idleMsg.textContent = state.state === "idle" && state.message ? text(state.message) : "";
  document.getElementById("failsafe-message").textContent = state.message ? text(state.message) : "";
}

function connect() {
  const es = new EventSource("/events");
  es.onmessage = ev => { state = JSON.parse(ev.data); render(); };
  es.onerror = () => { es.close(); setTimeout(connect, 1000); };
}

document.addEventListener("click", ev => {
  const b = ev.target.closest("button[data-event]");
  if (b && !b.disabled) post(b.dataset.event);
  const l = ev.target.closest("button.lang");
  if (l) post("lang", { lang: l.dataset.lang });
});

fetch("/labels.json").then(r => r.json()).then(l => { labels = l; render(); connect(); });
