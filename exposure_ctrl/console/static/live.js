/* Live view: renders the state pushed by /api/events and sends therapist commands.
   Every value is written with textContent, never parsed as HTML. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const fmtClock = window.ConsoleChart.fmtClock;
  const SPAN_S = 300;            // heart rate shown: the last five minutes of session time
  const KEEP_S = 600;
  let hr = [];                   // [[t, bpm]] in session seconds
  let state = null;
  let lastEvent = 0;
  let endArmedUntil = 0;

  function num(x, digits, unit) {
    if (x === null || x === undefined) return "—";
    return x.toFixed(digits) + (unit ? " " + unit : "");
  }
  function signed(x, unit) {
    if (x === null || x === undefined) return "—";
    return (x >= 0 ? "+" : "") + x.toFixed(1) + " " + unit;
  }
  function setText(id, text) { const el = $(id); if (el.textContent !== text) el.textContent = text; }
  function setChip(id, cls, text) { const el = $(id); el.className = "chip " + cls; setText(id, text); }
  function show(id, on) { $(id).classList.toggle("hidden", !on); }

  const ZONES = { unknown: "—", below: "below window", window: "in window", above: "above window", ceiling: "OVER CEILING" };

  function toast(text, bad) {
    const t = $("toast"); t.textContent = text; t.className = "toast" + (bad ? " bad" : "");
  }

  async function send(body) {
    try {
      const r = await fetch("/api/command", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const j = await r.json().catch(() => ({}));
      if (!r.ok) { toast(j.error || ("refused (" + r.status + ")"), true); return false; }
      toast("sent: " + (j.queued || body.command));
      return true;
    } catch (e) {
      toast("the console cannot be reached: " + e, true);
      return false;
    }
  }

  function renderNoSession(s) {
    show("live", false); show("nosession", true);
    const text = s.starting ? "A session is starting…" : (s.error ? "The session could not run: " + s.error
      : "Start one from New session, or review past sessions.");
    setText("nosession-text", text);
  }

  function renderAlarms(alarms) {
    const box = $("alarms");
    const key = alarms.join("\n");
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.replaceChildren(...alarms.map((a) => { const d = document.createElement("div"); d.className = "alarm"; d.textContent = "⚠ " + a; return d; }));
  }

  function renderParams(sc, running) {
    const body = $("params");
    const rows = sc.parameters;
    if (body.children.length !== rows.length) {
      body.replaceChildren(...rows.map((p) => {
        const tr = document.createElement("tr"); tr.dataset.param = p.id;
        for (const c of ["name", "commanded", "shown", "level", "act"]) { const td = document.createElement("td"); td.className = c; tr.appendChild(td); }
        const up = document.createElement("button"); up.textContent = "▲"; up.title = "one step up: " + p.title;
        up.dataset.cmd = "step_up"; up.dataset.param = p.id; up.setAttribute("aria-label", p.title + " up");
        const down = document.createElement("button"); down.textContent = "▼"; down.title = "one step down: " + p.title;
        down.dataset.cmd = "step_down"; down.dataset.param = p.id; down.setAttribute("aria-label", p.title + " down");
        tr.lastChild.append(up, " ", down);
        return tr;
      }));
    }
    rows.forEach((p, i) => {
      const tr = body.children[i];
      tr.children[0].textContent = p.title + (p.role === "soothing" ? " (soothing)" : "");
      tr.children[1].textContent = p.commanded ?? "—";
      tr.children[2].textContent = p.shown ?? "—";
      tr.children[2].className = "shown" + (p.differs ? " differs" : "");
      tr.children[2].title = p.differs ? "the headset is still fading to the commanded value" : "";
      const lv = tr.children[3];
      if (lv.dataset.key !== p.index + "/" + p.n_levels) {
        lv.dataset.key = p.index + "/" + p.n_levels;
        const bar = document.createElement("span"); bar.className = "level";
        for (let k = 0; k < p.n_levels; k++) { const b = document.createElement("i"); if (p.index !== null && k <= p.index) b.className = "on"; bar.appendChild(b); }
        lv.replaceChildren(bar);
      }
      for (const b of tr.children[4].querySelectorAll("button")) b.disabled = !running;
    });
  }

  function renderList(id, items) {
    const el = $(id);
    const key = items.join("\n");
    if (el.dataset.key === key) return;
    el.dataset.key = key;
    el.replaceChildren(...items.map((m) => { const li = document.createElement("li"); li.textContent = m; return li; }));
  }

  let updates = 0;
  function render(s) {
    state = s;
    document.body.dataset.updates = String(++updates);
    if (!s.session) { renderNoSession(s); return; }
    show("nosession", false); show("live", true);
    const ss = s.session, h = s.heart;
    renderAlarms(s.alarms || []);
    // ended banner
    const ended = ss.ended;
    show("ended", ended);
    if (ended) {
      setText("ended-text", "Session ended: " + (ss.outcome || "").replace(/_/g, " ") + (ss.end_reason ? " (" + ss.end_reason + ")" : ""));
      const link = $("report-link");
      if (ss.report_url) { link.href = ss.report_url; show("report-link", true); show("report-wait", false); }
      else {
        show("report-link", false); show("report-wait", true);
        setText("report-wait", ss.finished ? (ss.report_path ? "report written to " + ss.report_path : "review it with exposure-ctrl console")
          : "the report is being written…");
      }
    }
    setText("patient", ss.patient);
    setText("scenario", ss.scenario);
    setText("phase", ss.phase);
    setText("phase-elapsed", ss.phase_elapsed_s == null ? "—" : fmtClock(ss.phase_elapsed_s));
    setText("elapsed", ss.elapsed_s == null ? "—" : fmtClock(ss.elapsed_s));
    setText("mode", ss.mode);
    const acting = { autonomous: "acting", advisory: "proposing", manual: "suggesting only" }[ss.mode] || ss.mode;
    setText("paused", ss.latched ? "SAFE STOP" : (ss.paused ? "PAUSED" : acting));
    $("paused").classList.toggle("alert", ss.latched || ss.paused);
    const d = s.devices;
    $("strap").className = "v dev " + (d.strap_ok ? "ok" : "bad"); setText("strap", d.strap);
    $("headset").className = "v dev " + (d.headset_ok ? "ok" : "bad");
    setText("headset", d.headset.replace(/ \(.*\)$/, ""));  // "connected (client)": the client in the tooltip
    $("headset").title = d.headset;
    // heart
    setText("hr", h.bpm == null ? "—" : h.bpm.toFixed(0));
    setText("hr-above", signed(h.above_bpm, "bpm"));
    setChip("zone", h.zone, ZONES[h.zone] || h.zone);
    setText("baseline", num(h.baseline_bpm, 1, "bpm"));
    setText("baseline-verdict", h.baseline_verdict || (ss.phase === "baseline" ? "measuring…" : ""));
    setText("window", "+" + h.window_bpm[0] + " to +" + h.window_bpm[1] + " bpm");
    setText("ceiling", "+" + h.ceiling_bpm + " bpm");
    setText("rmssd", num(h.rmssd_ms, 0, "ms"));
    setChip("quality", h.quality, h.quality_text);
    // heart-rate points
    if (s.hr_reset) hr = [];
    if (s.hr && s.hr.length) hr.push(...s.hr);
    const now = ss.elapsed_s != null ? ss.elapsed_s : (hr.length ? hr[hr.length - 1][0] : 0);
    if (hr.length && hr[0][0] < now - KEEP_S) hr = hr.filter((p) => p[0] >= now - KEEP_S);
    $("hr-chart").dataset.points = String(hr.length);  // for tests and the curious
    window.ConsoleChart.drawHeart($("hr-chart"), hr, {
      now, span: SPAN_S, baseline: h.baseline_bpm, window: h.window_bpm, ceiling: h.ceiling_bpm, hardMax: h.hard_max_bpm,
    });
    const suds = s.suds;
    setText("suds-last", suds.last == null ? "(none yet)" : "last " + suds.last + " · target " + suds.window[0] + "–" + suds.window[1]);
    window.ConsoleChart.drawSuds($("suds-chart"), suds.history, { now, window: suds.window });
    // scene
    const sc = s.scene;
    setText("step", "step " + Math.max(0, sc.step + 1) + " of " + sc.steps + ": " + sc.step_name);
    $("intensity-bar").style.width = Math.round(100 * Math.min(1, Math.max(0, sc.intensity || 0))) + "%";
    const exposure = ss.phase === "exposure" && !ended;
    renderParams(sc, exposure);
    // policy and shield
    setText("policy-action", s.policy.action || "—");
    setText("policy-reason", s.policy.reason || "—");
    show("proposal", !!s.policy.proposal && !ended);
    setText("proposal-text", s.policy.proposal || "");
    setText("shield-last", s.shield.last || "—");
    setText("shield-intervention", s.shield.last_intervention || "none");
    renderList("sensitivities", s.sensitivities.length ? s.sensitivities : ["(learning as the session goes)"]);
    renderList("messages", (s.messages || []).slice().reverse());
    // controls
    const live = !ended;
    const pause = $("btn-pause");
    const resume = ss.paused || ss.latched;
    pause.dataset.cmd = resume ? "resume" : "pause";
    pause.textContent = ss.latched ? "Resume after safe stop" : (ss.paused ? "Resume policy" : "Pause policy");
    pause.classList.toggle("active", resume);
    pause.disabled = !live;
    for (const id of ["btn-up", "btn-down", "btn-safe"]) {
      $(id).disabled = !exposure;
      $(id).title = exposure ? "" : "scene changes only during exposure";
    }
    for (const id of ["btn-hold", "btn-suds", "btn-note", "btn-accept", "btn-reject"]) $(id).disabled = !live;
    const endBtn = $("btn-end");
    endBtn.disabled = !live;
    if (Date.now() > endArmedUntil) {
      endBtn.classList.remove("armed");
      endBtn.textContent = ss.phase === "recovery" ? "End recovery now" : "End session";
    }
    show("btn-confirm", !!ss.awaiting_baseline_confirmation);
  }

  // --- commands ---------------------------------------------------------------------------------
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-cmd]");
    if (!b || b.disabled) return;
    const cmd = b.dataset.cmd;
    if (cmd === "end" && Date.now() > endArmedUntil) {
      endArmedUntil = Date.now() + 4000;
      b.classList.add("armed"); b.textContent = "Tap again to end";
      setTimeout(() => { if (state) render(state); }, 4100);
      return;
    }
    if (cmd === "end") { endArmedUntil = 0; b.classList.remove("armed"); }
    const body = { command: cmd };
    if (b.dataset.param) body.parameter = b.dataset.param;
    send(body);
  });

  $("suds-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("suds-input");
    const text = input.value.trim();
    const v = Number(text);
    if (text === "" || !Number.isInteger(v) || v < 0 || v > 100) { toast("SUDS is a whole number from 0 to 100", true); input.focus(); return; }
    if (await send({ command: "suds", value: v })) input.value = "";
  });

  $("note-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("note-input");
    const text = input.value.trim();
    if (!text) { toast("a note needs some text", true); return; }
    if (await send({ command: "note", text })) input.value = "";
  });

  // --- the stream -------------------------------------------------------------------------------
  const conn = $("conn");
  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("state", (ev) => {
      lastEvent = Date.now();
      conn.textContent = "live"; conn.className = "conn";
      try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    });
    es.onerror = () => { conn.textContent = "connection lost: reconnecting…"; conn.className = "conn down"; };
  }
  setInterval(() => {
    if (lastEvent && Date.now() - lastEvent > 3000) { conn.textContent = "no update for " + Math.round((Date.now() - lastEvent) / 1000) + " s"; conn.className = "conn down"; }
  }, 1000);
  window.addEventListener("resize", () => { if (state) render(state); });
  connect();
})();
