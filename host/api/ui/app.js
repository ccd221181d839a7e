/* Berth dashboard: one page, hash routing, no dependencies.
 *
 * Rules this file keeps:
 *  - Every value from the API reaches the page through textContent or DOM
 *    properties (h() below), never through innerHTML: job parameters, errors
 *    and log lines can hold anything.
 *  - The secret lives in sessionStorage (this tab only) and travels in the
 *    Authorization header of each request, never in a URL.
 *  - Destructive actions ask first (confirmAction).
 */
'use strict';

(function () {
  const SECRET_KEY = 'berth.secret';
  const CHART_MINUTES = 15;
  const FINAL = ['Success', 'Error', 'Stopped'];
  const STATUSES = ['Pending', 'Scheduled', 'Running', 'Stopped', 'Error', 'Success'];
  const LOG_MAX_CHARS = 2 * 1024 * 1024;

  const state = {
    secret: null,
    loginOpen: false,
    page: null,        // the running page's context
    history: new Map(), // job id -> [{status, at, revision}]
  };
  try { state.secret = sessionStorage.getItem(SECRET_KEY); } catch (e) { state.secret = null; }

  /* ---------------------------------------------------------------- DOM */

  const $ = (sel, root) => (root || document).querySelector(sel);

  /* h('tag', {class, text, on: {click}, data: {k}, ...props}, ...children)
   * Strings and numbers among the children become text nodes. */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
        else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
        else if (k in el && typeof v !== 'string') el[k] = v;
        else el.setAttribute(k, String(v));
      }
    }
    append(el, kids);
    return el;
  }

  function append(el, kids) {
    for (const k of kids) {
      if (k === undefined || k === null || k === false) continue;
      if (Array.isArray(k)) append(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
  }

  /* el's children become kids (nested arrays flattened; null, undefined
   * and false left out). */
  function fill(el, ...kids) {
    while (el.firstChild) el.removeChild(el.firstChild);
    append(el, kids);
    return el;
  }

  function add(el, ...kids) {
    append(el, kids);
    return el;
  }

  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const k of kids) {
      if (k === undefined || k === null) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  function link(hash, text, cls) {
    return h('a', { href: hash, class: cls || null }, text);
  }

  function jobLink(id) {
    return link('#/job/' + encodeURIComponent(id), id, 'mono');
  }

  function badge(status) {
    const s = String(status == null ? '' : status);
    const known = ['pending', 'scheduled', 'running', 'success', 'error', 'stopped',
      'healthy', 'dead', 'paused', 'loaded', 'refused'];
    const lc = s.toLowerCase();
    return h('span', { class: 'badge' + (known.includes(lc) ? ' s-' + lc : '') }, s || '—');
  }

  function table(cols, rows, opts) {
    opts = opts || {};
    const head = h('thead', null, h('tr', null,
      cols.map((c) => h('th', { class: c.cls || null }, c.title))));
    const body = h('tbody');
    if (!rows || rows.length === 0) {
      body.appendChild(h('tr', null, h('td', { class: 'empty', colSpan: cols.length },
        opts.empty || 'Nothing here.')));
    } else {
      for (const r of rows) {
        const tr = h('tr', opts.row ? opts.row(r) : null);
        for (const c of cols) tr.appendChild(h('td', { class: c.cls || null }, c.cell(r)));
        body.appendChild(tr);
      }
    }
    return h('div', { class: 'tablewrap' }, h('table', { class: 'grid' }, head, body));
  }

  function kv(pairs) {
    const t = h('table', { class: 'kv' });
    for (const [k, v] of pairs) {
      if (v === undefined) continue;
      t.appendChild(h('tr', null, h('th', null, k), h('td', null, v === null || v === '' ? '—' : v)));
    }
    return t;
  }

  function card(label, value, sub, cls) {
    return h('div', { class: 'card' + (cls ? ' ' + cls : '') },
      h('div', { class: 'label' }, label),
      h('div', { class: 'value' }, value),
      sub ? h('div', { class: 'sub' }, sub) : null);
  }

  function pre(obj) {
    return h('pre', { class: 'json' }, JSON.stringify(obj, null, 2));
  }

  /* --------------------------------------------------------- formatting */

  function pad(n) { return String(n).padStart(2, '0'); }

  function fmtTime(epoch) {
    const n = Number(epoch);
    if (!n) return '—';
    const d = new Date(n * 1000);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function fmtDur(sec) {
    sec = Math.round(Math.abs(sec));
    if (sec < 60) return sec + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min ' + (sec % 60) + ' s';
    if (sec < 86400) return Math.floor(sec / 3600) + ' h ' + Math.floor((sec % 3600) / 60) + ' min';
    return Math.floor(sec / 86400) + ' d ' + Math.floor((sec % 86400) / 3600) + ' h';
  }

  function fmtAgo(epoch) {
    const n = Number(epoch);
    if (!n) return '';
    const d = n - Date.now() / 1000;
    return d > 1 ? 'in ' + fmtDur(d) : fmtDur(d) + ' ago';
  }

  /* A time cell: local time, relative time below. */
  function when(epoch) {
    const n = Number(epoch);
    if (!n) return '—';
    return h('span', { title: new Date(n * 1000).toISOString() }, fmtTime(n),
      h('div', { class: 'muted small' }, fmtAgo(n)));
  }

  function fmtNum(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return '—';
    return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits || 0 });
  }

  function shortJson(v, max) {
    if (v === undefined || v === null) return '';
    let s = typeof v === 'string' ? v : JSON.stringify(v);
    max = max || 120;
    if (s.length > max) s = s.slice(0, max - 1) + '…';
    return s;
  }

  /* ---------------------------------------------------------------- API */

  class ApiError extends Error {
    constructor(status, body) {
      const msg = body && typeof body === 'object'
        ? [body.message, body.details].filter(Boolean).join(': ')
        : String(body || '');
      super('HTTP ' + status + (msg ? ' — ' + msg : ''));
      this.status = status;
      this.body = body;
    }
  }

  async function request(method, path, opts) {
    opts = opts || {};
    const secret = opts.secret !== undefined ? opts.secret : state.secret;
    const headers = { Authorization: 'Harbor-Secret ' + (secret || '') };
    let body;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    const r = await fetch(path, {
      method, headers, body, signal: opts.signal,
      cache: 'no-store', credentials: 'omit', redirect: 'error',
    });
    if (!r.ok) {
      let doc = null;
      try {
        const text = await r.text();
        try { doc = JSON.parse(text); } catch (e) { doc = text; }
      } catch (e) { doc = null; }
      if (r.status === 401 && opts.secret === undefined) askLogin('The secret was refused; enter it again.');
      throw new ApiError(r.status, doc);
    }
    return r;
  }

  /* JSON of a route (null for an empty body), with the response headers. */
  async function apiFull(method, path, opts) {
    const r = await request(method, path, opts);
    const text = await r.text();
    return { data: text ? JSON.parse(text) : null, headers: r.headers };
  }

  async function api(method, path, opts) {
    return (await apiFull(method, path, opts)).data;
  }

  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
    }
    const s = u.toString();
    return s ? '?' + s : '';
  }

  const enc = encodeURIComponent;

  /* ----------------------------------------------------- notices, modal */

  function notify(text, kind) {
    const n = h('div', { class: 'notice' + (kind ? ' ' + kind : ''), role: 'status' }, text);
    $('#notices').appendChild(n);
    setTimeout(() => n.remove(), kind === 'bad' ? 9000 : 4500);
  }

  function errText(e) {
    return e instanceof Error ? e.message : String(e);
  }

  /* Resolves true when the user confirms. */
  function confirmAction(title, text, okText) {
    return new Promise((resolve) => {
      const dlg = $('#confirm');
      $('#confirm-title').textContent = title;
      $('#confirm-text').textContent = text;
      const ok = $('#confirm-ok');
      ok.textContent = okText || 'Confirm';
      const done = (v) => {
        ok.onclick = null;
        $('#confirm-cancel').onclick = null;
        dlg.oncancel = null;
        if (dlg.open) dlg.close();
        resolve(v);
      };
      ok.onclick = () => done(true);
      $('#confirm-cancel').onclick = () => done(false);
      dlg.oncancel = (ev) => { ev.preventDefault(); done(false); };
      dlg.showModal();
      $('#confirm-cancel').focus();
    });
  }

  /* Runs an action from a button: confirmation (when asked), the request,
   * a notice, then refresh. */
  async function act(btn, opts) {
    if (opts.confirm && !(await confirmAction(opts.confirm[0], opts.confirm[1], opts.confirm[2]))) return;
    btn.disabled = true;
    try {
      const res = await opts.run();
      notify(opts.done ? opts.done(res) : 'Done.', 'ok');
      if (opts.after) opts.after(res);
    } catch (e) {
      notify(errText(e), 'bad');
    } finally {
      btn.disabled = false;
    }
  }

  function button(text, cls, onClick, data) {
    return h('button', { type: 'button', class: 'btn ' + (cls || ''), data, on: { click: onClick } }, text);
  }

  /* -------------------------------------------------------------- login */

  function askLogin(message) {
    state.secret = null;
    try { sessionStorage.removeItem(SECRET_KEY); } catch (e) { /* private mode */ }
    const dlg = $('#login');
    $('#login-error').textContent = message || '';
    if (!dlg.open) {
      state.loginOpen = true;
      $('#secret').value = '';
      dlg.showModal();
      $('#secret').focus();
    }
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const candidate = $('#secret').value.trim();
    if (!candidate) return;
    const btn = $('#login-submit');
    btn.disabled = true;
    $('#login-error').textContent = '';
    try {
      const cfg = await api('GET', '/api/v1/config', { secret: candidate });
      state.secret = candidate;
      try { sessionStorage.setItem(SECRET_KEY, candidate); } catch (e) { /* kept in memory */ }
      $('#secret').value = '';
      $('#login').close();
      state.loginOpen = false;
      showWhere(cfg);
      render();
    } catch (e) {
      $('#login-error').textContent = e.status === 401
        ? 'That secret was refused.' : 'Cannot reach berthd: ' + errText(e);
    } finally {
      btn.disabled = false;
    }
  }

  function showWhere(cfg) {
    const ns = cfg && cfg.redis_pool_config && cfg.redis_pool_config.Namespace;
    $('#where').textContent = ns ? 'namespace ' + ns + ' · ' + location.host : location.host;
  }

  /* ------------------------------------------------------------- router */

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const qi = raw.indexOf('?');
    const path = qi >= 0 ? raw.slice(0, qi) : raw;
    const query = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
    const parts = path.split('/').filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    return { name: parts[0] || 'overview', arg: parts[1], query };
  }

  function go(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  }

  /* The context a page runs in: aborted (timers, streams) when the user
   * leaves it. */
  function makeContext(root, route) {
    const ctrl = new AbortController();
    const timers = new Set();
    const ctx = {
      root, route, signal: ctrl.signal,
      alive: () => !ctrl.signal.aborted,
      /* fn now, then ms (a number, or a function giving it) after each
       * run finished, while the page lives. */
      every(ms, fn) {
        const tick = async () => {
          if (!ctx.alive()) return;
          if (state.secret) {
            try { await fn(); ctx.ok(); } catch (e) { if (e.name !== 'AbortError') ctx.fail(e); }
          }
          if (!ctx.alive()) return;
          const t = setTimeout(() => { timers.delete(t); tick(); }, typeof ms === 'function' ? ms() : ms);
          timers.add(t);
        };
        tick();
      },
      banner: h('div', { class: 'banner', role: 'alert' }),
      updated: h('span', { class: 'updated' }),
      ok() { ctx.banner.textContent = ''; ctx.updated.textContent = 'updated ' + fmtTime(Date.now() / 1000).slice(11); },
      fail(e) { if (e.status !== 401) ctx.banner.textContent = errText(e); },
      close() { ctrl.abort(); for (const t of timers) clearTimeout(t); timers.clear(); },
    };
    return ctx;
  }

  function pageHead(ctx, title, ...extra) {
    return [h('div', { class: 'pagehead' }, h('h1', null, title), ctx.updated, ...extra), ctx.banner];
  }

  const pages = {};

  function render() {
    if (state.page) state.page.close();
    state.page = null;
    const route = parseHash();
    for (const a of document.querySelectorAll('#nav a')) {
      const active = a.dataset.page === route.name || (route.name === 'job' && a.dataset.page === 'jobs');
      a.classList.toggle('active', active);
    }
    const main = $('#main');
    fill(main);
    if (!state.secret) {
      main.appendChild(h('p', { class: 'muted' }, 'Sign in to see the dashboard.'));
      askLogin($('#login-error').textContent);
      return;
    }
    const fn = pages[route.name];
    if (!fn) {
      main.appendChild(h('p', null, 'No such page. ', link('#/overview', 'Back to the overview')));
      return;
    }
    const ctx = makeContext(main, route);
    state.page = ctx;
    document.title = 'Berth · ' + route.name;
    fn(ctx);
  }

  /* ------------------------------------------------------------ metrics */

  /* The Prometheus text of GET /api/v1/metrics -> totals of the task
   * counter by status, jobs running, retries. */
  function parseMetrics(text) {
    const out = { success: 0, fail: 0, stop: 0, running: 0, retries: 0, byType: {} };
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const name = m[1];
      const labels = {};
      if (m[3]) {
        const re = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
        let l;
        while ((l = re.exec(m[3])) !== null) labels[l[1]] = l[2].replace(/\\(.)/g, (x, c) => (c === 'n' ? '\n' : c));
      }
      const v = Number(m[4]);
      if (Number.isNaN(v)) continue;
      if (/task_total$/.test(name) && labels.status in { success: 1, fail: 1, stop: 1 }) {
        out[labels.status] += v;
        const t = out.byType[labels.type] || (out.byType[labels.type] = { success: 0, fail: 0, stop: 0 });
        t[labels.status] += v;
      } else if (name === 'berth_jobs_running') {
        out.running += v;
      } else if (name === 'berth_job_retries_total') {
        out.retries += v;
      } else if (name === 'berth_redis_up') {
        out.redisUp = v;
      } else if (name === 'berth_hooks_pending') {
        out.hooksPending = v;
      }
    }
    return out;
  }

  async function fetchMetrics(signal) {
    const r = await request('GET', '/api/v1/metrics', { signal });
    return parseMetrics(await r.text());
  }

  /* The daemon's per-minute history, GET /api/v1/metrics/history:
   * {interval_seconds, now, buckets: [{t, submitted, started, success,
   * error, stopped}]}, oldest first, the current (partial) minute last.
   * The daemon keeps it, so a newly opened page has the whole window. */
  function fetchHistory(signal) {
    return api('GET', '/api/v1/metrics/history' + qs({ minutes: CHART_MINUTES }), { signal });
  }

  /* Per bucket: finished runs, errors, the failure rate (% of the
   * finished runs that ended in Error; null when none finished). */
  function historyPoints(hist) {
    const buckets = hist && Array.isArray(hist.buckets) ? hist.buckets : [];
    return buckets.map((b, i) => {
      const n = (k) => (typeof b[k] === 'number' && b[k] > 0 ? b[k] : 0);
      const finished = n('success') + n('error') + n('stopped');
      return {
        t: n('t'), finished, success: n('success'), error: n('error'), stopped: n('stopped'),
        started: n('started'), submitted: n('submitted'),
        failPct: finished > 0 ? (100 * n('error')) / finished : null,
        partial: i === buckets.length - 1,
      };
    });
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  /* Throughput (finished runs per minute, one bar per minute, left axis;
   * the current minute, still counting, lighter) and failure rate (% of
   * the finished runs that ended in Error, dashed with a dot per minute,
   * right axis). hist null: the axes only (loading); note: a line under
   * the chart instead of the summary (an error). */
  function drawChart(box, hist, note) {
    const W = 1100, H = 230, L = 48, R = 44, T = 12, B = 26;
    const pts = historyPoints(hist);
    const slots = Math.max(pts.length, CHART_MINUTES);
    const slotW = (W - L - R) / slots;
    const cx = (i) => L + slotW * (slots - pts.length + i + 0.5);
    const maxThr = niceMax(Math.max(0, ...pts.map((p) => p.finished)));
    const yThr = (v) => T + (H - T - B) * (1 - v / maxThr);
    const yPct = (v) => T + (H - T - B) * (1 - v / 100);
    const el = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'throughput and failure rate per minute' });
    for (let i = 0; i <= 4; i++) {
      const y = T + ((H - T - B) * i) / 4;
      el.appendChild(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'axis' }));
      el.appendChild(svg('text', { x: L - 6, y: y + 3, 'text-anchor': 'end', class: 'tick' },
        fmtNum(maxThr * (1 - i / 4), 2)));
      el.appendChild(svg('text', { x: W - R + 6, y: y + 3, class: 'tick' }, (100 - 25 * i) + '%'));
    }
    for (let i = 0; i < pts.length; i++) {
      const ago = pts.length - 1 - i;
      if (ago % 5 !== 0) continue;
      el.appendChild(svg('text', { x: cx(i), y: H - 6, 'text-anchor': 'middle', class: 'tick' },
        ago === 0 ? 'now' : '-' + ago + ' min'));
    }
    const bars = svg('g', { class: 'bars' });
    pts.forEach((p, i) => {
      const y = yThr(p.finished);
      const bar = svg('rect', {
        x: (cx(i) - slotW * 0.35).toFixed(1), width: (slotW * 0.7).toFixed(1),
        y: y.toFixed(1), height: Math.max(0, yThr(0) - y).toFixed(1),
        class: 'bar' + (p.partial ? ' partial' : ''),
        'data-t': p.t, 'data-finished': p.finished, 'data-error': p.error,
      }, svg('title', null, fmtTime(p.t).slice(11, 16) + (p.partial ? ' (this minute so far)' : '') + ': ' +
        p.finished + ' finished (' + p.success + ' ok, ' + p.error + ' failed, ' + p.stopped + ' stopped), ' +
        p.started + ' started, ' + p.submitted + ' submitted'));
      bars.appendChild(bar);
    });
    el.appendChild(bars);
    const f = pts.map((p, i) => ({ p, i })).filter((x) => x.p.failPct !== null);
    if (f.length) {
      el.appendChild(svg('polyline', {
        points: f.map((x) => `${cx(x.i).toFixed(1)},${yPct(x.p.failPct).toFixed(1)}`).join(' '),
        class: 'fail',
      }));
      for (const x of f) {
        el.appendChild(svg('circle', { cx: cx(x.i).toFixed(1), cy: yPct(x.p.failPct).toFixed(1), r: 2.5, class: 'fail-dot' }));
      }
    }
    let summary;
    if (note) {
      summary = note;
    } else if (!hist) {
      summary = 'loading…';
    } else {
      const last5 = pts.slice(-5);
      const done = last5.reduce((a, p) => a + p.finished, 0);
      const bad = last5.reduce((a, p) => a + p.error, 0);
      summary = 'last 5 min: ' + fmtNum(done) + ' finished, ' + fmtNum(bad) + ' failed' +
        (done ? ' (' + fmtNum((100 * bad) / done, 1) + '%)' : '');
    }
    fill(box, el, h('div', { class: 'legend' },
      h('span', null, h('span', { class: 'sw thr' }), 'finished runs / min (left)'),
      h('span', null, h('span', { class: 'sw fail' }), 'failure rate, % of finished runs that ended in Error (right)'),
      h('span', { class: 'chart-summary' }, summary)));
  }

  /* -------------------------------------------------------------- pages */

  pages.overview = (ctx) => {
    const cards = h('div', { class: 'cards', id: 'overview-cards' });
    const chart = h('div', { class: 'chart', id: 'chart' });
    const types = h('div');
    add(ctx.root, ...pageHead(ctx, 'Overview'), cards,
      h('div', { class: 'panel' }, h('h2', null, 'Throughput and failure rate (this daemon, last 15 minutes)'), chart),
      h('h2', null, 'Finished runs by job type (this daemon, since it started)'), types);
    /* the chart: the daemon's history at once, then every other round
     * (10 s), drawn when it arrives; its errors stay under the chart */
    let hist = null;
    let round = 0;
    drawChart(chart, null);
    ctx.every(5000, async () => {
      if (round++ % 2 === 0) {
        fetchHistory(ctx.signal).then((doc) => {
          hist = doc;
          if (ctx.alive()) drawChart(chart, hist);
        }, (e) => {
          if (e.name !== 'AbortError' && ctx.alive()) drawChart(chart, hist, 'history: ' + errText(e));
        });
      }
      const [m, q, p] = await Promise.all([
        fetchMetrics(ctx.signal),
        api('GET', '/api/v1/queues', { signal: ctx.signal }).catch((e) => ({ error: e })),
        api('GET', '/api/v1/pools', { signal: ctx.signal }).catch((e) => ({ error: e })),
      ]);
      const qs_ = q.queues || [];
      const pending = qs_.reduce((a, x) => a + (x.pending || 0), 0);
      const inProg = qs_.reduce((a, x) => a + (x.in_progress || 0), 0);
      const paused = qs_.filter((x) => x.paused).length;
      const totals = q.totals || {};
      const pools = p.pools || [];
      const healthy = pools.filter((x) => x.status === 'Healthy');
      const workers = healthy.reduce((a, x) => a + (x.concurrency || 0), 0);
      const busy = healthy.reduce((a, x) => a + (x.busy || 0), 0);
      const finished = m.success + m.fail + m.stop;
      fill(cards,
        card('Pending', q.error ? '?' : fmtNum(pending), paused ? paused + ' type(s) paused' : qs_.length + ' job types'),
        card('In progress', q.error ? '?' : fmtNum(inProg), 'busy workers: ' + (p.error ? '?' : busy + ' of ' + workers)),
        card('Scheduled', q.error ? '?' : fmtNum(totals.scheduled || 0)),
        card('Retries', q.error ? '?' : fmtNum(totals.retry || 0), null, totals.retry ? 'bad' : null),
        card('Dead', q.error ? '?' : fmtNum(totals.dead || 0), null, totals.dead ? 'bad' : null),
        card('Pools', p.error ? '?' : healthy.length + ' / ' + pools.length, 'healthy / all'),
        card('Finished here', fmtNum(finished), fmtNum(m.success) + ' ok · ' + fmtNum(m.fail) + ' failed · ' + fmtNum(m.stop) + ' stopped'),
        card('Redis', m.redisUp === 1 ? 'up' : m.redisUp === 0 ? 'down' : '?', 'hooks pending: ' + fmtNum(m.hooksPending || 0), m.redisUp === 0 ? 'bad' : 'ok'));
      const rows = Object.entries(m.byType).map(([type, c]) => ({ type, ...c })).sort((a, b) => a.type.localeCompare(b.type));
      fill(types, table([
        { title: 'Type', cell: (r) => link('#/jobs?type=' + enc(r.type), r.type) },
        { title: 'Success', cls: 'num', cell: (r) => fmtNum(r.success) },
        { title: 'Failed', cls: 'num', cell: (r) => fmtNum(r.fail) },
        { title: 'Stopped', cls: 'num', cell: (r) => fmtNum(r.stop) },
      ], rows, { empty: 'No run has finished in this daemon yet.' }));
      if (q.error) throw q.error;
      if (p.error) throw p.error;
    });
  };

  pages.queues = (ctx) => {
    const body = h('div');
    const all = (action, label, confirmText) => button(label, action === 'resume' ? '' : 'danger', (ev) => act(ev.currentTarget, {
      confirm: confirmText,
      run: () => api('PUT', '/api/v1/queues/*', { body: { action } }),
      done: (r) => queueDone(r),
      after: () => refresh(),
    }), { action, type: '*' });
    add(ctx.root, ...pageHead(ctx, 'Queues'),
      h('div', { class: 'toolbar' },
        h('span', { class: 'muted grow' }, 'Pause and resume write Harbor\'s paused key, so Harbor\'s dashboard and Go instances see the same state.'),
        all('pause', 'Pause all', ['Pause every queue?', 'No instance will start jobs of any type until you resume.', 'Pause all']),
        all('resume', 'Resume all', null),
        all('stop', 'Stop all jobs', ['Stop every pending and running job of every type?', 'Their status becomes Stopped. This cannot be undone.', 'Stop all'])),
      body);
    const load = async () => draw(await api('GET', '/api/v1/queues', { signal: ctx.signal }));
    const refresh = () => load().catch((e) => ctx.fail(e));
    ctx.every(3000, load);
    function draw(d) {
      const list = d.queues || [];
      fill(body, table([
        { title: 'Type', cell: (r) => h('span', null, link('#/jobs?type=' + enc(r.type), r.type), r.loaded ? null : h('div', { class: 'muted small' }, 'not loaded here')) },
        { title: 'State', cell: (r) => badge(r.paused ? 'Paused' : 'Active') },
        { title: 'Pending', cls: 'num', cell: (r) => fmtNum(r.pending) },
        { title: 'Latency', cls: 'num', cell: (r) => (r.pending ? fmtDur(r.latency_seconds || 0) : '—') },
        { title: 'In progress', cls: 'num', cell: (r) => fmtNum(r.in_progress) },
        { title: 'Limit', cls: 'num', cell: (r) => (r.max_concurrency ? fmtNum(r.lock) + ' / ' + fmtNum(r.max_concurrency) : '∞') },
        { title: 'Scheduled', cls: 'num', cell: (r) => fmtNum(r.scheduled) },
        { title: 'Retry', cls: 'num', cell: (r) => (r.retry ? link('#/retries?type=' + enc(r.type), fmtNum(r.retry)) : '0') },
        { title: 'Dead', cls: 'num', cell: (r) => (r.dead ? link('#/dead?type=' + enc(r.type), fmtNum(r.dead)) : '0') },
        {
          title: '', cls: 'actions', cell: (r) => [
            r.paused
              ? button('Resume', 'small', (ev) => act(ev.currentTarget, {
                run: () => api('PUT', '/api/v1/queues/' + enc(r.type), { body: { action: 'resume' } }),
                done: queueDone, after: () => refresh(),
              }), { action: 'resume', type: r.type })
              : button('Pause', 'small', (ev) => act(ev.currentTarget, {
                confirm: ['Pause ' + r.type + '?', 'No instance will start jobs of ' + r.type + ' until you resume it. Running jobs go on.', 'Pause'],
                run: () => api('PUT', '/api/v1/queues/' + enc(r.type), { body: { action: 'pause' } }),
                done: queueDone, after: () => refresh(),
              }), { action: 'pause', type: r.type }),
            button('Stop all', 'small danger', (ev) => act(ev.currentTarget, {
              confirm: ['Stop every job of ' + r.type + '?', 'All pending and running jobs of ' + r.type + ' become Stopped. This cannot be undone.', 'Stop all'],
              run: () => api('PUT', '/api/v1/queues/' + enc(r.type), { body: { action: 'stop' } }),
              done: queueDone, after: () => refresh(),
            }), { action: 'stop', type: r.type }),
          ],
        },
      ], list, { empty: 'No job type is known in this namespace.', row: (r) => ({ data: { type: r.type } }) }));
      if (d.counts_partial) body.appendChild(h('p', { class: 'muted small' }, 'Scheduled, retry and dead counts cover the first 10,000 members of each set.'));
    }
  };

  function queueDone(r) {
    const types = (r && r.types) || [];
    let s = (r && r.action ? r.action : 'done') + ': ' + (types.length === 1 ? types[0] : types.length + ' types');
    if (r && r.action === 'stop') s += ' — ' + (r.stopped_pending || 0) + ' pending and ' + (r.stopped_running || 0) + ' running job(s) stopped';
    return s;
  }

  pages.pools = (ctx) => {
    const body = h('div');
    const busyBox = h('div');
    add(ctx.root, ...pageHead(ctx, 'Pools and workers'), body, h('h2', null, 'Busy workers'), busyBox);
    ctx.every(3000, async () => {
      const doc = await api('GET', '/api/v1/pools', { signal: ctx.signal });
      const pools = doc.pools || [];
      fill(body, table([
        { title: 'Pool', cell: (r) => h('span', null, h('span', { class: 'mono' }, r.pool_id), r.self ? h('span', { class: 'tag' }, 'this daemon') : null) },
        { title: 'Kind', cell: (r) => (r.berth ? 'Berth' : 'Go') },
        { title: 'Host', cell: (r) => String(r.host || '—') + (r.pid ? ' · pid ' + r.pid : '') },
        { title: 'Status', cell: (r) => badge(r.status) },
        { title: 'Started', cell: (r) => when(r.started_at) },
        { title: 'Heartbeat', cell: (r) => (r.heartbeat_at ? fmtAgo(r.heartbeat_at) : '—') },
        { title: 'Busy', cls: 'num', cell: (r) => fmtNum(r.busy) + ' / ' + fmtNum(r.concurrency) },
        { title: 'Job types', cell: (r) => (r.job_names || []).map((n) => h('span', { class: 'tag' }, n)) },
      ], pools, { empty: 'No worker pool has a heartbeat in this namespace.', row: (r) => ({ data: { pool: r.pool_id } }) }));
      const live = pools.filter((p) => p.busy > 0 || p.self);
      const lists = await Promise.all(live.map((p) =>
        api('GET', '/api/v1/pools/' + enc(p.pool_id) + '/workers', { signal: ctx.signal })
          .then((d) => (d.workers || []).filter((w) => w.busy).map((w) => ({ ...w, pool_id: p.pool_id })))
          .catch(() => [])));
      const busy = lists.flat().sort((a, b) => (a.started_at || 0) - (b.started_at || 0));
      fill(busyBox, table([
        { title: 'Worker', cell: (r) => h('span', { class: 'mono' }, r.worker_id) },
        { title: 'Pool', cell: (r) => h('span', { class: 'mono' }, r.pool_id) },
        { title: 'Job type', cell: (r) => r.job_name },
        { title: 'Job', cell: (r) => (r.job_id ? jobLink(r.job_id) : '—') },
        { title: 'Since', cell: (r) => (r.started_at ? fmtTime(r.started_at) + ' (' + fmtDur(Date.now() / 1000 - r.started_at) + ')' : '—') },
        { title: 'Parameters', cell: (r) => h('span', { class: 'mono small' }, shortJson(r.args)) },
      ], busy, { empty: 'No worker is running a job.' }));
    });
  };

  pages.jobs = (ctx) => {
    const q = ctx.route.query;
    const f = {
      status: q.get('status') || '',
      type: q.get('type') || '',
      kind: q.get('kind') || '',
      page_size: q.get('page_size') || '50',
      cursor: q.get('cursor') || '0',
    };
    const sel = (name, values, cur) => h('select', { name, id: 'f-' + name },
      values.map(([v, label]) => h('option', { value: v, selected: v === cur }, label)));
    const typeInput = h('input', { name: 'type', id: 'f-type', value: f.type, placeholder: 'any type', list: 'types-list', size: 18 });
    const typesList = h('datalist', { id: 'types-list' });
    const form = h('form', { class: 'toolbar', id: 'job-filters' },
      h('label', { class: 'inline' }, 'Status', sel('status', [['', 'any']].concat(STATUSES.map((s) => [s, s])), f.status)),
      h('label', { class: 'inline' }, 'Type', typeInput, typesList),
      h('label', { class: 'inline' }, 'Kind', sel('kind', [['', 'any'], ['Generic', 'Generic'], ['Scheduled', 'Scheduled (waiting)'], ['Periodic', 'Periodic']], f.kind)),
      h('label', { class: 'inline' }, 'Page size', sel('page_size', [['25', '25'], ['50', '50'], ['100', '100'], ['500', '500']], f.page_size)),
      h('button', { type: 'submit', class: 'btn primary' }, 'Apply'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const fd = new FormData(form);
      go('#/jobs' + qs({ status: fd.get('status'), type: String(fd.get('type') || '').trim(), kind: fd.get('kind'), page_size: fd.get('page_size') }));
    });
    const body = h('div');
    const pager = h('div', { class: 'pager' });
    add(ctx.root, ...pageHead(ctx, 'Jobs'), form, body, pager);
    api('GET', '/api/v1/queues', { signal: ctx.signal }).then((d) => {
      fill(typesList, ...(d.queues || []).map((x) => h('option', { value: x.type })));
    }).catch(() => {});
    const scheduled = f.kind === 'Scheduled';
    const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
    ctx.every(5000, async () => {
      let res;
      if (scheduled) {
        res = await apiFull('GET', '/api/v1/jobs' + qs({ kind: 'Scheduled', page_number: page }), { signal: ctx.signal });
      } else {
        res = await apiFull('GET', '/api/v1/jobs' + qs({ status: f.status, type: f.type, kind: f.kind, page_size: f.page_size, cursor: f.cursor }), { signal: ctx.signal });
      }
      const items = (res.data || []).map((x) => (x && x.job ? x.job : x)).filter(Boolean);
      items.sort((a, b) => (b.update_time || 0) - (a.update_time || 0));
      fill(body, table([
        { title: 'Job', cell: (r) => jobLink(r.id) },
        { title: 'Type', cell: (r) => r.name },
        { title: 'Kind', cell: (r) => r.kind },
        { title: 'Status', cell: (r) => badge(r.status) },
        { title: 'Enqueued', cell: (r) => when(r.enqueue_time) },
        { title: scheduled ? 'Runs at' : 'Updated', cell: (r) => when(scheduled ? r.run_at : r.update_time) },
        { title: 'Parameters', cell: (r) => h('span', { class: 'mono small' }, shortJson(r.parameters, 80)) },
      ], items, {
        empty: (res.headers.get('Next-Cursor') || '0') !== '0'
          ? 'No matching job in this stretch of the namespace; "Next page" goes on.' : 'No matching job.',
        row: (r) => ({ data: { job: r.id, status: r.status } }),
      }));
      fill(pager);
      if (scheduled) {
        const total = Number(res.headers.get('Total-Count') || 0);
        const pages_ = Math.max(1, Math.ceil(total / 20));
        add(pager,
          page > 1 ? link('#/jobs' + qs({ kind: 'Scheduled', page: page - 1 }), '← Previous', 'btn') : null,
          h('span', { class: 'muted' }, 'page ' + page + ' of ' + pages_ + ' · ' + total + ' scheduled'),
          page < pages_ ? link('#/jobs' + qs({ kind: 'Scheduled', page: page + 1 }), 'Next →', 'btn') : null);
      } else {
        const next = res.headers.get('Next-Cursor') || '0';
        const base = { status: f.status, type: f.type, kind: f.kind, page_size: f.page_size };
        add(pager,
          f.cursor !== '0' ? link('#/jobs' + qs(base), '⇤ First page', 'btn') : null,
          next !== '0' ? link('#/jobs' + qs({ ...base, cursor: next }), 'Next page →', 'btn') : null,
          h('span', { class: 'muted small' }, next === '0'
            ? 'end of the namespace'
            : 'pages follow the Redis SCAN cursor; a filtered page may hold fewer jobs than its size'));
      }
    });
  };

  /* The status history this tab has seen for a job, from the stats'
   * update_time at each change (Redis keeps only the current status). */
  function recordHistory(job) {
    let hist = state.history.get(job.id);
    if (!hist) {
      hist = [];
      state.history.set(job.id, hist);
    }
    const last = hist[hist.length - 1];
    if (!last || last.status !== job.status || last.revision !== job.revision) {
      hist.push({ status: job.status, at: job.update_time, revision: job.revision, seen: Date.now() / 1000 });
    }
    return hist;
  }

  function progressOf(text) {
    const m = /(\d{1,3}(?:\.\d+)?)\s*%|%\s*(\d{1,3}(?:\.\d+)?)/.exec(String(text || ''));
    if (!m) return null;
    const v = Number(m[1] || m[2]);
    return v >= 0 && v <= 100 ? v : null;
  }

  pages.job = (ctx) => {
    const id = ctx.route.arg || '';
    const summary = h('div', { id: 'job-summary' });
    const detailBox = h('div', { id: 'job-detail' });
    const histBox = h('div', { id: 'job-history' });
    const checkBox = h('div', { id: 'job-checkin' });
    const params = h('div', { id: 'job-params' });
    const actions = h('div', { class: 'toolbar' });
    const execBox = h('div', { id: 'job-executions' });
    const logPre = h('pre', { class: 'log', id: 'job-log' });
    const logState = h('span', { class: 'muted small', id: 'log-state' });
    let logCheckin = null;
    let logEvents = [];   // {at, status, note} of the runs, from the log
    let logPartial = '';  // the unfinished last line
    add(ctx.root, ...pageHead(ctx, ['Job ', h('span', { class: 'mono' }, id)]),
      actions,
      h('div', { class: 'grid2' },
        h('div', null,
          h('div', { class: 'panel' }, h('h2', null, 'Stats'), summary),
          h('div', { class: 'panel' }, h('h2', null, 'Parameters'), params)),
        h('div', null,
          h('div', { class: 'panel' }, h('h2', null, 'Status history'), histBox),
          h('div', { class: 'panel' }, h('h2', null, 'Check-in'), checkBox),
          h('div', { class: 'panel' }, h('h2', null, 'Retries and errors'), detailBox))),
      h('div', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', { class: 'grow' }, 'Log'), logState), logPre),
      execBox);

    let job = null;
    let logRunning = false;
    let logKey = null;

    // the detail view searches the retry and dead sets: every 1.5 s while
    // the job may change, every 10 s once it is final
    ctx.every(() => (job && FINAL.includes(job.status) ? 10000 : 1500), async () => {
      const doc = await api('GET', '/api/v1/jobs/' + enc(id) + '?detail=true', { signal: ctx.signal });
      job = doc.job || {};
      const d = doc.detail || {};
      const hist = recordHistory(job);
      fill(summary, kv([
        ['Status', badge(job.status)],
        ['Type', job.name],
        ['Kind', job.kind],
        ['Unique', job.unique ? 'yes' : 'no'],
        ['Enqueued', when(job.enqueue_time)],
        ['Updated', when(job.update_time)],
        ['Runs at', job.run_at ? when(job.run_at) : undefined],
        ['Cron spec', job.cron_spec ? h('span', { class: 'mono' }, job.cron_spec) : undefined],
        ['Policy', job.upstream_job_id ? jobLink(job.upstream_job_id) : undefined],
        ['Revision', job.revision ? String(job.revision) + ' (' + fmtTime(job.revision) + ')' : undefined],
        ['Status hook', job.web_hook_url ? h('span', { class: 'mono' }, job.web_hook_url) : undefined],
        ['Hook ACK', job.ack ? h('span', { class: 'mono' }, JSON.stringify(job.ack)) : undefined],
      ]));
      fill(histBox, h('ol', { class: 'history' },
        h('li', null, h('span', { class: 'when' }, fmtTime(job.enqueue_time)), 'submitted'),
        mergeHistory(hist).map((x) => h('li', { data: { status: x.status } },
          h('span', { class: 'when' }, fmtTime(x.at)), badge(x.status),
          x.note ? h('span', { class: 'muted small' }, x.note) : null))),
        h('p', { class: 'muted small' }, 'Runs from the job log, other changes as seen while this page is open (Redis keeps only the current status).'));
      const ciText = d.check_in || (logCheckin && logCheckin.text) || '';
      const ciAt = d.check_in_at || job.check_in_at || (logCheckin && logCheckin.at) || 0;
      const pct = progressOf(ciText);
      fill(checkBox, ciText || ciAt ? h('div', null,
        pct !== null ? h('div', { class: 'progress', title: pct + '%' }, (() => { const bar = h('div'); bar.style.width = pct + '%'; return bar; })()) : null,
        kv([['Latest', ciText ? h('span', { class: 'mono', id: 'checkin-text' }, ciText) : '—'], ['At', when(ciAt)]]))
        : h('p', { class: 'muted' }, 'No check-in yet.'));
      fill(detailBox, kv([
        ['Failed attempts', fmtNum(d.fails || 0)],
        ['Last error', d.last_error ? h('span', { class: 'error' }, d.last_error) : '—'],
        ['Failed at', d.failed_at ? when(d.failed_at) : '—'],
        ['Next retry', d.next_retry_at ? when(d.next_retry_at) : '—'],
        ['Dead', d.dead ? h('span', null, badge('Dead'), ' since ', fmtTime(d.died_at), ' ', link('#/dead', 'dead set')) : 'no'],
      ]));
      if (job.parameters !== undefined) fill(params, pre(job.parameters));
      else fill(params, h('p', { class: 'muted' }, 'No parameters.'));
      drawActions(d);
      if (job.kind === 'Periodic' && !execBox.dataset.started) {
        execBox.dataset.started = '1';
        executions();
      }
      const key = job.revision + ':' + !FINAL.includes(job.status);
      if (!logRunning && key !== logKey) startLog(key);
    });

    function drawActions(d) {
      const final = FINAL.includes(job.status);
      fill(actions,
        link('#/jobs', '← Jobs', 'btn'),
        !final ? button(job.kind === 'Periodic' ? 'Unschedule policy' : 'Stop job', 'danger', (ev) => act(ev.currentTarget, {
          confirm: [job.kind === 'Periodic' ? 'Unschedule this policy?' : 'Stop this job?', (job.kind === 'Periodic' ? 'No further executions of ' : 'The job ') + id + (job.kind === 'Periodic' ? ' will be created.' : ' will be asked to stop; its status becomes Stopped.'), 'Stop'],
          run: () => api('POST', '/api/v1/jobs/' + enc(id), { body: { action: 'stop' } }),
          done: () => 'Stop requested for ' + id,
        }), { action: 'stop' }) : null,
        d.next_retry_at ? button('Retry now', '', (ev) => act(ev.currentTarget, {
          run: () => api('POST', '/api/v1/retries/' + enc(id), { body: { action: 'retry' } }),
          done: () => 'Retry of ' + id + ' is due now',
        }), { action: 'retry-now' }) : null,
        d.dead ? button('Retry from the dead set', '', (ev) => act(ev.currentTarget, {
          confirm: ['Retry ' + id + '?', 'It leaves the dead set and runs again with a full set of attempts.', 'Retry'],
          run: () => api('POST', '/api/v1/dead/' + enc(id), { body: { action: 'retry' } }),
          done: () => id + ' queued again',
        }), { action: 'retry-dead' }) : null);
    }

    async function executions() {
      const box = h('div');
      fill(execBox, h('div', { class: 'panel' }, h('h2', null, 'Executions'), box));
      const load = async () => {
        const res = await apiFull('GET', '/api/v1/jobs/' + enc(id) + '/executions' + qs({ page_number: 1, page_size: 20 }), { signal: ctx.signal });
        const rows = (res.data || []).map((x) => (x && x.job ? x.job : x)).filter(Boolean);
        fill(box,
          h('p', { class: 'muted small' }, 'Total: ' + (res.headers.get('Total-Count') || rows.length) + ' (the first 20 shown)'),
          table([
            { title: 'Execution', cell: (r) => jobLink(r.id) },
            { title: 'Status', cell: (r) => badge(r.status) },
            { title: 'Runs at', cell: (r) => when(r.run_at) },
            { title: 'Updated', cell: (r) => when(r.update_time) },
          ], rows, { empty: 'No execution yet.' }));
      };
      const loop = async () => {
        while (ctx.alive()) {
          try { await load(); } catch (e) { if (e.name !== 'AbortError') ctx.fail(e); }
          await new Promise((r) => setTimeout(r, 5000));
        }
      };
      loop();
    }

    /* The log's run events and the statuses this page saw, in time
     * order; a status seen within 2 s of the same one in the log is the
     * same change. */
    function mergeHistory(seen) {
      const out = logEvents.slice();
      for (const x of seen) {
        const at = x.at || x.seen;
        if (!out.some((e) => e.status === x.status && Math.abs(e.at - at) <= 2)) {
          out.push({ at, status: x.status, note: null });
        }
      }
      return out.sort((a, b) => a.at - b.at);
    }

    /* Lines the daemon writes itself (a source file and line in the
     * brackets; a plugin's lines carry its job type there). */
    const LINE_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) \[[A-Z]+\] \[[^\]]+\.c:\d+\]: (.*)$/;

    function scanLine(line) {
      const m = LINE_RE.exec(line);
      if (!m) return;
      const at = Date.parse(m[1]) / 1000;
      const msg = m[2];
      let x;
      if ((x = /^job \S+ \(.*\) starting, revision (\d+)/.exec(msg))) {
        logEvents.push({ at, status: 'Running', note: 'run of revision ' + x[1] });
      } else if ((x = /^job finished with status (\w+)(?:: (.*))?$/.exec(msg))) {
        logEvents.push({ at, status: x[1], note: x[2] || null });
      } else if ((x = /^check in: (.*)$/.exec(msg))) {
        logCheckin = { text: x[1], at };
      }
    }

    function appendLog(text) {
      const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 8;
      logPre.appendChild(document.createTextNode(text));
      if (logPre.textContent.length > LOG_MAX_CHARS) {
        logPre.textContent = '…(older lines dropped)\n' + logPre.textContent.slice(-LOG_MAX_CHARS / 2);
      }
      const lines = (logPartial + text).split('\n');
      logPartial = lines.pop();
      if (logPartial.length > 65536) logPartial = '';
      lines.forEach(scanLine);
      if (atBottom) logPre.scrollTop = logPre.scrollHeight;
    }

    /* The log: streamed with ?follow=true (fetch, the secret in the
     * header) while the job may still write to it, read once when final. */
    async function startLog(key) {
      logRunning = true;
      logKey = key;
      const live = !FINAL.includes(job.status);
      logPre.textContent = '';
      logEvents = [];
      logPartial = '';
      logState.textContent = live ? 'following…' : 'loading…';
      try {
        const r = await request('GET', '/api/v1/jobs/' + enc(id) + '/log' + (live ? '?follow=true' : ''), { signal: ctx.signal });
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          appendLog(dec.decode(value, { stream: true }));
        }
        appendLog(dec.decode());
        if (logPartial) scanLine(logPartial);
        logPartial = '';
        logState.textContent = live ? 'log complete (the job ended)' : 'complete';
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e.status === 404) logState.textContent = 'no log for this job';
        else if (e.status === 503) {
          logState.textContent = 'too many logs followed at once; retrying in 3 s';
          setTimeout(() => { logKey = null; }, 3000);
        } else if (e.status === 500 && e.body && e.body.code === 10009) {
          logState.textContent = 'logs cannot be read: ' + (e.body.details || e.body.message || '');
        } else logState.textContent = errText(e);
      } finally {
        logRunning = false;
      }
    }
  };

  /* One page of the retry or dead set, with retry/delete per job and for
   * the whole set. */
  function setPage(kind) {
    return (ctx) => {
      const q = ctx.route.query;
      const type = q.get('type') || '';
      const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
      const title = kind === 'dead' ? 'Dead jobs' : 'Retries';
      const path = '/api/v1/' + (kind === 'dead' ? 'dead' : 'retries');
      const body = h('div');
      const pager = h('div', { class: 'pager' });
      const whole = (action, label, cls, confirm) => button(label, cls, (ev) => act(ev.currentTarget, {
        confirm,
        run: () => api('POST', path, { body: { action } }),
        done: (r) => action + ': ' + ((r && r.affected) || 0) + ' job(s)',
        after: () => refresh(),
      }), { action: action + '-all' });
      add(ctx.root, ...pageHead(ctx, title),
        h('div', { class: 'toolbar' },
          h('span', { class: 'muted grow' }, kind === 'dead'
            ? 'Jobs that used up their attempts. Retry puts one back with a full set of attempts.'
            : 'Failed jobs waiting for their next attempt. Retry makes the attempt due now.',
          type ? h('span', null, ' Type ', h('span', { class: 'tag' }, type), ' ', link('#/' + kind, 'show all')) : null),
          whole('retry', kind === 'dead' ? 'Retry all' : 'Retry all now', '', ['Retry every job of the ' + (kind === 'dead' ? 'dead' : 'retry') + ' set?', 'Every job in it is queued again.', 'Retry all']),
          whole('delete', 'Delete all', 'danger', ['Delete every job of the ' + (kind === 'dead' ? 'dead' : 'retry') + ' set?', 'They will not run again. This cannot be undone.', 'Delete all'])),
        body, pager);
      const load = async () => {
        const doc = await api('GET', path + qs({ page, page_size: 50, type }), { signal: ctx.signal });
        const items = doc.items || [];
        fill(body, table([
          { title: 'Job', cell: (r) => jobLink(r.job_id) },
          { title: 'Type', cell: (r) => r.name },
          { title: 'Error', cell: (r) => h('span', { class: 'error' }, r.error || '—') },
          { title: 'Fails', cls: 'num', cell: (r) => fmtNum(r.fails || 0) },
          { title: 'Failed at', cell: (r) => when(r.failed_at) },
          { title: kind === 'dead' ? 'Died at' : 'Next attempt', cell: (r) => when(kind === 'dead' ? r.died_at : r.retry_at) },
          { title: 'Parameters', cell: (r) => h('span', { class: 'mono small' }, shortJson(r.args, 60)) },
          {
            title: '', cls: 'actions', cell: (r) => [
              button('Retry', 'small', (ev) => act(ev.currentTarget, {
                confirm: kind === 'dead' ? ['Retry ' + r.job_id + '?', 'It leaves the dead set and runs again with a full set of attempts.', 'Retry'] : null,
                run: () => api('POST', path + '/' + enc(r.job_id), { body: { action: 'retry' } }),
                done: () => r.job_id + ' queued again', after: () => refresh(),
              }), { action: 'retry', job: r.job_id }),
              button('Delete', 'small danger', (ev) => act(ev.currentTarget, {
                confirm: ['Delete ' + r.job_id + '?', 'The job will not run again; its stats keep their last status until they expire.', 'Delete'],
                run: () => api('POST', path + '/' + enc(r.job_id), { body: { action: 'delete' } }),
                done: () => r.job_id + ' deleted', after: () => refresh(),
              }), { action: 'delete', job: r.job_id }),
            ],
          },
        ], items, { empty: kind === 'dead' ? 'The dead set is empty.' : 'No job waits for a retry.', row: (r) => ({ data: { job: r.job_id } }) }));
        const total = doc.total || 0;
        const pages_ = Math.max(1, Math.ceil(total / (doc.page_size || 50)));
        const base = (p) => '#/' + kind + qs({ type, page: p });
        fill(pager,
          page > 1 ? link(base(page - 1), '← Previous', 'btn') : null,
          h('span', { class: 'muted' }, 'page ' + page + ' of ' + pages_ + ' · ' + total + ' in the set'),
          page < pages_ ? link(base(page + 1), 'Next →', 'btn') : null);
      };
      const refresh = () => load().catch((e) => ctx.fail(e));
      ctx.every(4000, load);
    };
  }
  pages.retries = setPage('retry');
  pages.dead = setPage('dead');

  pages.periodic = (ctx) => {
    const body = h('div');
    const execs = h('div');
    add(ctx.root, ...pageHead(ctx, 'Periodic policies'), body, execs);
    let selected = ctx.route.query.get('policy') || '';
    ctx.every(10000, async () => {
      const doc = await api('GET', '/api/v1/periodic', { signal: ctx.signal });
      const list = doc.policies || [];
      fill(body, table([
        { title: 'Policy', cell: (r) => jobLink(r.id) },
        { title: 'Type', cell: (r) => r.job_name },
        { title: 'Cron spec', cell: (r) => h('span', { class: 'mono' }, r.cron_spec) },
        { title: 'Next runs', cell: (r) => (r.error ? h('span', { class: 'error' }, r.error) : (r.next_runs || []).length ? (r.next_runs || []).map((t) => h('div', { class: 'small' }, fmtTime(t), ' ', h('span', { class: 'muted' }, fmtAgo(t)))) : 'never again') },
        { title: 'Parameters', cell: (r) => h('span', { class: 'mono small' }, shortJson(r.job_params, 60)) },
        {
          title: '', cls: 'actions', cell: (r) => [
            link('#/periodic' + qs({ policy: r.id }), 'Executions', 'btn small'),
            button('Unschedule', 'small danger', (ev) => act(ev.currentTarget, {
              confirm: ['Unschedule ' + r.job_name + ' policy ' + r.id + '?', 'No further executions will be created; waiting ones are removed.', 'Unschedule'],
              run: () => api('POST', '/api/v1/jobs/' + enc(r.id), { body: { action: 'stop' } }),
              done: () => 'policy ' + r.id + ' unscheduled',
            }), { action: 'unschedule', job: r.id }),
          ],
        },
      ], list, { empty: 'No periodic policy.', row: (r) => ({ data: { policy: r.id } }) }));
      if (selected) {
        const res = await apiFull('GET', '/api/v1/jobs/' + enc(selected) + '/executions' + qs({ page_number: 1, page_size: 20 }), { signal: ctx.signal });
        const rows = (res.data || []).map((x) => (x && x.job ? x.job : x)).filter(Boolean);
        fill(execs, h('h2', null, 'Executions of ', h('span', { class: 'mono' }, selected),
          h('span', { class: 'muted small' }, ' · total ' + (res.headers.get('Total-Count') || rows.length) + ', the first 20')),
        table([
          { title: 'Execution', cell: (r) => jobLink(r.id) },
          { title: 'Status', cell: (r) => badge(r.status) },
          { title: 'Runs at', cell: (r) => when(r.run_at) },
          { title: 'Updated', cell: (r) => when(r.update_time) },
        ], rows, { empty: 'No execution yet.' }));
      } else {
        fill(execs, h('p', { class: 'muted' }, 'Choose "Executions" on a policy to see its runs.'));
      }
    });
  };

  pages.plugins = (ctx) => {
    const body = h('div');
    const reload = button('Reload plugins', 'primary', (ev) => act(ev.currentTarget, {
      confirm: ['Reload the plugin manifest?', 'berthd re-reads plugins.yml (as on SIGHUP): new plugins load, changed ones are upgraded; running jobs finish on their old version.', 'Reload'],
      run: () => api('POST', '/api/v1/plugins/reload'),
      done: () => 'manifest reloaded',
      after: (doc) => draw(doc),
    }), { action: 'reload' });
    add(ctx.root, ...pageHead(ctx, 'Plugins'), h('div', { class: 'toolbar' }, h('span', { class: 'muted grow' }, 'The job plugins of this daemon (plugins.yml).'), reload), body);
    function draw(doc) {
      const plugins = doc.plugins || [];
      const refused = doc.refused || [];
      const retiring = doc.retiring || [];
      fill(body,
        table([
          { title: 'Type', cell: (r) => h('strong', null, r.name) },
          { title: 'Version', cell: (r) => r.version || '—' },
          { title: 'ABI', cell: (r) => (r.abi ? String(r.abi.major !== undefined ? r.abi.major + '.' + r.abi.minor : r.abi) : r.abi_major !== undefined ? r.abi_major + '.' + r.abi_minor : '—') },
          { title: 'Max fails', cls: 'num', cell: (r) => fmtNum(r.max_fails) },
          { title: 'Concurrency', cls: 'num', cell: (r) => (r.max_concurrency ? fmtNum(r.max_concurrency) : '∞') },
          { title: 'Priority', cls: 'num', cell: (r) => fmtNum(r.priority) },
          { title: 'Isolation', cell: (r) => r.isolation || 'thread' },
          { title: 'Generation', cls: 'num', cell: (r) => (r.generation !== undefined ? fmtNum(r.generation) : '—') },
          { title: 'File', cell: (r) => h('span', { class: 'mono small' }, r.file || r.path || '') },
        ], plugins, { empty: 'No plugin is loaded.', row: (r) => ({ data: { plugin: r.name } }) }),
        retiring.length ? [h('h2', null, 'Retiring (older versions still running jobs)'), pre(retiring)] : null,
        refused.length ? [h('h2', null, 'Refused'), table([
          { title: 'Plugin', cell: (r) => r.name || r.file || '—' },
          { title: 'Reason', cell: (r) => h('span', { class: 'error' }, r.reason || r.error || shortJson(r, 200)) },
        ], refused)] : null);
    }
    ctx.every(10000, async () => draw(await api('GET', '/api/v1/plugins', { signal: ctx.signal })));
  };

  /* --------------------------------------------------------------- boot */

  function boot() {
    $('#login-form').addEventListener('submit', onLogin);
    $('#login').addEventListener('cancel', (ev) => ev.preventDefault());
    $('#logout').addEventListener('click', () => {
      if (state.page) state.page.close();
      askLogin('Signed out.');
      render();
    });
    window.addEventListener('hashchange', render);
    if (state.secret) api('GET', '/api/v1/config').then(showWhere).catch(() => {});
    if (!location.hash) history.replaceState(null, '', '#/overview');
    render();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
}());
