/* Setup page: fill the choices from /api/options, scan for straps, start a session. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let options = null;

  function fill(select, items, label) {
    select.replaceChildren(...items.map((it) => {
      const o = document.createElement("option"); o.value = it.id; o.textContent = label(it); return o;
    }));
  }
  function hint(id, text) { $(id).textContent = text || ""; }
  function show(id, on) { $(id).classList.toggle("hidden", !on); }
  function error(text) { const e = $("setup-error"); e.textContent = text || ""; show("setup-error", !!text); }

  function onSensor() {
    const s = $("sensor").value;
    const item = options.sensors.find((x) => x.id === s);
    hint("sensor-hint", item ? item.help : "");
    show("ble-box", s === "ble");
    show("replay-box", s === "replay");
    show("sim-box", s === "sim" || s === "replay");
    $("speed").placeholder = s === "sim" ? String(options.default_speed) : "1";
  }

  async function load() {
    const r = await fetch("/api/options", { credentials: "same-origin" });
    if (!r.ok) { error("the console did not answer (" + r.status + ")"); return; }
    options = await r.json();
    fill($("scenario"), options.scenarios, (s) => s.title + " (" + s.indication + ")");
    $("scenario").value = options.default_scenario;
    fill($("mode"), options.modes, (m) => m.id + ": " + m.help);
    fill($("sensor"), options.sensors, (s) => s.label || s.id);
    if (options.sensors.some((s) => s.id === "sim")) $("sensor").value = "sim";
    fill($("headset"), options.headsets, (h) => h.id);
    fill($("policy"), [{ id: "", help: "" }].concat(options.policies),
      (p) => p.id ? p.id + (p.help ? " — " + p.help : "") : "the scenario's shipped policy");
    const modeHint = () => hint("mode-hint", (options.modes.find((m) => m.id === $("mode").value) || {}).help);
    $("mode").addEventListener("change", modeHint); modeHint();
    $("sensor").addEventListener("change", onSensor); onSensor();
    $("headset").addEventListener("change", () => show("listen-box", $("headset").value === "listen"));
    show("running", options.running);
    $("start").disabled = options.running || !options.allow_start;
  }

  $("scan").addEventListener("click", async () => {
    const status = $("scan-status"), list = $("straps");
    status.textContent = "scanning…"; list.replaceChildren(); $("scan").disabled = true;
    try {
      const r = await fetch("/api/scan", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}" });
      const j = await r.json();
      if (!r.ok) { status.textContent = j.error || "the scan failed"; return; }
      status.textContent = j.straps.length ? j.straps.length + " found: tap one to use it" : "no strap found: is it worn and awake?";
      list.replaceChildren(...j.straps.map((s) => {
        const li = document.createElement("li"); const b = document.createElement("button"); b.type = "button";
        b.textContent = (s.name || "(no name)") + " · " + s.address + " · " + s.rssi + " dBm" + (s.heart_rate ? "" : " (not a heart-rate strap)");
        b.addEventListener("click", () => { $("device").value = s.address; status.textContent = "using " + (s.name || s.address); });
        li.appendChild(b); return li;
      }));
    } catch (e) {
      status.textContent = "the console cannot be reached: " + e;
    } finally { $("scan").disabled = false; }
  });

  $("setup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error("");
    const code = $("patient").value.trim();
    if (!code) { error("enter a patient code (a pseudonym such as P-0042, never a name)"); $("patient").focus(); return; }
    const body = {};
    for (const id of ["patient", "scenario", "mode", "policy", "sensor", "device", "replay", "speed", "seed", "headset", "bind", "keys", "baseline_s", "duration_min"]) {
      const v = $(id).value.trim(); if (v !== "") body[id] = v;
    }
    $("start").disabled = true; $("start").textContent = "Starting…";
    try {
      const r = await fetch("/api/start", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const j = await r.json().catch(() => ({}));
      if (!r.ok) { error(j.error || ("the session could not start (" + r.status + ")")); return; }
      window.location.assign(j.live || "/live");
    } catch (e) {
      error("the console cannot be reached: " + e);
    } finally { $("start").disabled = false; $("start").textContent = "Start session"; }
  });

  load().catch((e) => error("cannot load the choices: " + e));
})();
