/* Small canvas charts for the live view: heart rate with its targets, and SUDS ratings.
   Plain JavaScript, no library. Exposes window.ConsoleChart. */
"use strict";

(function () {
  const COLORS = {
    grid: "#e3e8ee", axis: "#5d6b7c", hr: "#1f5fae", base: "#5d6b7c",
    window: "rgba(29,122,58,0.16)", windowEdge: "rgba(29,122,58,0.45)", ceil: "#b3141b",
    hardMax: "#7a0b10", suds: "#8a4fbf", sudsWindow: "rgba(138,79,191,0.12)", text: "#1b2430",
  };

  function fmtClock(s) {
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function prepare(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(100, canvas.clientWidth), h = Math.max(50, canvas.clientHeight);
    const pw = Math.round(w * dpr), ph = Math.round(h * dpr);
    if (canvas.width !== pw || canvas.height !== ph) { canvas.width = pw; canvas.height = ph; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, w, h };
  }

  function niceStep(range, target) {
    const raw = range / Math.max(1, target);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }

  function timeAxis(ctx, x0, x1, t0, t1, yBase, h) {
    const step = niceStep(t1 - t0, 6) < 30 ? 30 : [30, 60, 120, 300, 600, 900, 1800, 3600].find(
      (s) => (t1 - t0) / s <= 7) || 3600;
    ctx.fillStyle = COLORS.axis; ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const x = x0 + (t - t0) / (t1 - t0) * (x1 - x0);
      ctx.strokeStyle = COLORS.grid; ctx.beginPath(); ctx.moveTo(x, 4); ctx.lineTo(x, yBase); ctx.stroke();
      ctx.fillText(fmtClock(t), x, yBase + 4);
    }
  }

  /* Heart rate of the last `span` seconds of session time, with baseline, window, ceiling. */
  function drawHeart(canvas, points, o) {
    const { ctx, w, h } = prepare(canvas);
    const L = 44, R = 62, T = 8, B = 20;
    const now = Math.max(o.now || 0, points.length ? points[points.length - 1][0] : 0);
    const span = o.span || 300;
    const t1 = Math.max(now, 60), t0 = Math.max(0, t1 - span);
    const shown = points.filter((p) => p[0] >= t0 && p[0] <= t1);
    let lo = Infinity, hi = -Infinity;
    for (const p of shown) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
    const base = o.baseline;
    if (base != null) {
      lo = Math.min(lo, base - 5);
      hi = Math.max(hi, base + o.ceiling + 6);
    }
    if (!isFinite(lo)) {
      ctx.fillStyle = COLORS.axis; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.font = "14px system-ui, sans-serif";
      ctx.fillText("waiting for heart rate…", w / 2, h / 2);
      return;
    }
    lo = Math.max(30, Math.floor((lo - 3) / 5) * 5); hi = Math.ceil((hi + 3) / 5) * 5;
    if (hi - lo < 20) { hi = lo + 20; }
    const x = (t) => L + (t - t0) / (t1 - t0) * (w - L - R);
    const y = (v) => T + (hi - v) / (hi - lo) * (h - T - B);
    // grid and bpm labels
    const step = niceStep(hi - lo, 5);
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
      ctx.strokeStyle = COLORS.grid; ctx.beginPath(); ctx.moveTo(L, y(v)); ctx.lineTo(w - R, y(v)); ctx.stroke();
      ctx.fillStyle = COLORS.axis; ctx.fillText(String(v), L - 6, y(v));
    }
    timeAxis(ctx, L, w - R, t0, t1, h - B, h);
    ctx.save(); ctx.beginPath(); ctx.rect(L, T, w - L - R, h - T - B); ctx.clip();
    if (base != null) {
      const wlo = base + o.window[0], whi = base + o.window[1];
      ctx.fillStyle = COLORS.window; ctx.fillRect(L, y(whi), w - L - R, y(wlo) - y(whi));
      ctx.strokeStyle = COLORS.windowEdge; ctx.lineWidth = 1;
      for (const v of [wlo, whi]) { ctx.beginPath(); ctx.moveTo(L, y(v)); ctx.lineTo(w - R, y(v)); ctx.stroke(); }
      ctx.strokeStyle = COLORS.base; ctx.lineWidth = 1.5; ctx.setLineDash([]);
      ctx.beginPath(); ctx.moveTo(L, y(base)); ctx.lineTo(w - R, y(base)); ctx.stroke();
      ctx.strokeStyle = COLORS.ceil; ctx.lineWidth = 2; ctx.setLineDash([7, 5]);
      ctx.beginPath(); ctx.moveTo(L, y(base + o.ceiling)); ctx.lineTo(w - R, y(base + o.ceiling)); ctx.stroke();
      ctx.setLineDash([]);
    }
    if (o.hardMax != null && o.hardMax <= hi && o.hardMax >= lo) {
      ctx.strokeStyle = COLORS.hardMax; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(L, y(o.hardMax)); ctx.lineTo(w - R, y(o.hardMax)); ctx.stroke();
    }
    // the heart rate, broken where samples are missing
    ctx.strokeStyle = COLORS.hr; ctx.lineWidth = 2; ctx.lineJoin = "round";
    ctx.beginPath();
    let prev = null;
    for (const p of shown) {
      if (prev === null || p[0] - prev > (o.gap || 6)) ctx.moveTo(x(p[0]), y(p[1])); else ctx.lineTo(x(p[0]), y(p[1]));
      prev = p[0];
    }
    ctx.stroke();
    ctx.restore();
    // labels on the right
    ctx.textAlign = "left"; ctx.textBaseline = "middle"; ctx.font = "11px system-ui, sans-serif";
    if (base != null) {
      ctx.fillStyle = COLORS.base; ctx.fillText("baseline", w - R + 4, y(base));
      ctx.fillStyle = "#1d7a3a"; ctx.fillText("window", w - R + 4, y(base + (o.window[0] + o.window[1]) / 2));
      ctx.fillStyle = COLORS.ceil; ctx.fillText("ceiling", w - R + 4, y(base + o.ceiling));
    }
    if (shown.length) {
      const last = shown[shown.length - 1];
      ctx.fillStyle = COLORS.hr; ctx.beginPath(); ctx.arc(x(last[0]), y(last[1]), 3.5, 0, 2 * Math.PI); ctx.fill();
    }
  }

  /* SUDS ratings over the whole session (0..100), with the scenario's SUDS window. */
  function drawSuds(canvas, history, o) {
    const { ctx, w, h } = prepare(canvas);
    const L = 44, R = 62, T = 8, B = 18;
    const t1 = Math.max(o.now || 0, 60, ...history.map((r) => r[0])), t0 = 0;
    const x = (t) => L + (t - t0) / (t1 - t0) * (w - L - R);
    const y = (v) => T + (100 - v) / 100 * (h - T - B);
    ctx.fillStyle = COLORS.sudsWindow; ctx.fillRect(L, y(o.window[1]), w - L - R, y(o.window[0]) - y(o.window[1]));
    ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.fillStyle = COLORS.axis;
    for (const v of [0, 50, 100]) {
      ctx.strokeStyle = COLORS.grid; ctx.beginPath(); ctx.moveTo(L, y(v)); ctx.lineTo(w - R, y(v)); ctx.stroke();
      ctx.fillText(String(v), L - 6, y(v));
    }
    timeAxis(ctx, L, w - R, t0, t1, h - B, h);
    if (!history.length) {
      ctx.textAlign = "center"; ctx.fillStyle = COLORS.axis; ctx.fillText("no SUDS rating yet", (L + w - R) / 2, h / 2 - 4);
      return;
    }
    ctx.strokeStyle = COLORS.suds; ctx.lineWidth = 1.5; ctx.beginPath();
    history.forEach((r, i) => { if (i) ctx.lineTo(x(r[0]), y(r[1])); else ctx.moveTo(x(r[0]), y(r[1])); });
    ctx.stroke();
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    for (const r of history) {
      ctx.fillStyle = r[2] === "headset" ? "#ffffff" : COLORS.suds;
      ctx.strokeStyle = COLORS.suds;
      ctx.beginPath(); ctx.arc(x(r[0]), y(r[1]), 4, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      ctx.fillStyle = COLORS.text; ctx.fillText(String(r[1]), x(r[0]), y(r[1]) - 5);
    }
  }

  window.ConsoleChart = { drawHeart, drawSuds, fmtClock };
})();
