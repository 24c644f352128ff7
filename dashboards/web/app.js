// Referral earnings dashboard. Plain JS, no dependencies, same-origin API.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'referral.token';
  const TREE_MIN_INTERVAL_MS = 5000;
  const TICKER_MAX = 50;
  const STREAM_IDLE_MS = 60000; // no bytes (not even keep-alives) for this long => reconnect

  const state = {
    token: null, me: null, viewId: null,
    gen: 0,              // bumped on sign-out / user switch; stale async work checks it
    streamCtrl: null, lastEventId: null,
    byLevel: new Map(),  // level -> BigInt paise
    legs: new Map(),     // leg_user_id -> {paise: BigInt, entries: number}
    total: null,         // last total string from the server
    seen: new Set(),     // "kind:earning_id" already shown in the ticker
    treeLast: 0, treeTimer: null, summaryTimer: null,
  };

  // ---------- money: decimal strings <-> integer paise (BigInt), never floats ----------
  function toPaise(str) {
    const m = /^\s*([+-]?)(\d+)(?:\.(\d{1,2})0*)?\s*$/.exec(String(str));
    if (!m) throw new Error(`bad amount ${JSON.stringify(str)}`);
    const p = BigInt(m[2]) * 100n + BigInt((m[3] || '').padEnd(2, '0'));
    return m[1] === '-' ? -p : p;
  }
  function paiseToStr(p) {
    const neg = p < 0n; const a = neg ? -p : p;
    return `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
  }
  // Server strings are shown verbatim (only the sign is moved in front of the ₹).
  function rupees(str) {
    const s = String(str).trim();
    return s.startsWith('-') ? `−₹${s.slice(1)}` : `₹${s.replace(/^\+/, '')}`;
  }
  // The tail of a UUID: v7 ids share their leading (time) digits, so the head would not tell users apart.
  const short = (id) => String(id || '').slice(-8);

  // ---------- small DOM helpers ----------
  function el(tag, attrs = {}, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') n.className = v; else if (k === 'text') n.textContent = v;
      // CSSOM, not a style attribute: the page's Content-Security-Policy allows no inline styles.
      else if (k === 'style') Object.assign(n.style, v); else n.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids) if (k != null) n.append(k);
    return n;
  }
  function bar(value, max, label) {
    const pct = max > 0n && value > 0n ? Number((value * 1000n) / max) / 10 : 0;
    const track = el('div', { class: 'bar', 'aria-hidden': 'true', title: label });
    track.append(el('span', { style: { width: `${Math.max(pct, value > 0n ? 1 : 0)}%` } }));
    return track;
  }
  function when(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return el('span', { text: '' });
    const sameDay = d.toDateString() === new Date().toDateString();
    const text = sameDay ? d.toLocaleTimeString() : d.toLocaleString();
    return el('time', { datetime: iso, text });
  }

  // ---------- alerts / status / views ----------
  function showAlert(msg) { const a = $('alert'); a.textContent = msg; a.hidden = !msg; }
  function setStatus(s) { const n = $('status'); n.textContent = s; n.dataset.state = s; }
  function showView(signedIn) {
    $('signin-view').hidden = signedIn;
    $('dashboard-view').hidden = !signedIn;
    $('sign-out').hidden = !signedIn;
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `Request failed (HTTP ${status})`);
      this.status = status; this.problem = problem;
    }
  }
  async function problemOf(res) {
    let body = {};
    try { body = await res.json(); } catch { /* not JSON */ }
    return new ApiError(res.status, body && typeof body === 'object' ? body : {});
  }
  async function api(path) {
    const res = await fetch(path, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: 'application/json' },
      cache: 'no-store',
    });
    if (!res.ok) throw await problemOf(res);
    return res.json();
  }
  // Central error handling: 401/403 => back to sign-in, else show detail.
  function handleError(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      signOut(`Signed out: ${err.message}. Please sign in again.`);
    } else if (err && err.name !== 'AbortError') {
      showAlert(err.message || String(err));
    }
  }
  const uid = (p) => `/v1/users/${encodeURIComponent(state.viewId)}${p}`;

  // ---------- sign-in flow ----------
  async function signIn(token) {
    state.token = token.replace(/^\s*Bearer\s+/i, '').trim();
    if (!state.token) { $('signin-message').textContent = 'Please paste a token.'; $('token').focus(); return; }
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $('signin-message').textContent = 'Signing in…';
    try {
      state.me = await api('/v1/me');
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        signOut(`Sign-in failed: ${err.message}`);
      } else { $('signin-message').textContent = ''; showAlert(err.message); }
      return;
    }
    $('signin-message').textContent = '';
    showAlert('');
    $('admin-panel').hidden = state.me.role !== 'admin';
    $('view-user-id').value = state.me.user_id || '';
    showView(true);
    if (!state.me.user_id) {
      // An admin is no user of their own: they choose whom to view.
      $('view-user-id').focus();
      return;
    }
    $('total-heading').setAttribute('tabindex', '-1');
    $('total-heading').focus();
    openUser(state.me.user_id);
  }

  function stopAll() {
    state.gen++;
    if (state.streamCtrl) state.streamCtrl.abort();
    clearTimeout(state.treeTimer); clearTimeout(state.summaryTimer);
    state.treeTimer = state.summaryTimer = null;
    state.streamCtrl = null; state.lastEventId = null;
    setStatus('offline');
  }

  function signOut(message) {
    stopAll();
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = state.me = state.viewId = null;
    showAlert('');
    showView(false);
    $('signin-message').textContent = message || '';
    $('token').value = '';
    $('token').focus();
  }

  async function openUser(id) {
    stopAll();
    const gen = state.gen;
    state.viewId = id;
    state.byLevel = new Map(); state.legs = new Map(); state.seen = new Set(); state.total = null;
    $('viewing-user').textContent = id;
    $('total').textContent = '…';
    placeholders('Loading…');
    $('ticker').replaceChildren();
    try {
      const [earn, legs, hist] = await Promise.all([
        api(uid('/earnings')), api(uid('/earnings/by-leg')), api(uid('/earnings/history?limit=20')),
      ]);
      if (gen !== state.gen) return;
      applySummary(earn, legs);
      fillHistory(hist.items || []);
      showAlert('');
    } catch (err) {
      if (gen !== state.gen) return;
      $('total').textContent = '—';
      placeholders('Could not load.');
      handleError(err);
      return;
    }
    loadTree(gen);
    streamLoop(gen);
  }

  function placeholders(text) {
    for (const k of ['by-level', 'legs', 'tree']) {
      $(k).replaceChildren(el($(k).tagName === 'UL' ? 'li' : 'p', { class: 'muted', text }));
    }
  }

  // ---------- summaries ----------
  function applySummary(earn, legs) {
    state.total = earn.total;
    $('total').textContent = rupees(earn.total);
    state.byLevel = new Map((earn.by_level || []).map((l) => [Number(l.level), toPaise(l.total)]));
    state.legs = new Map((legs.legs || []).map((l) => [l.leg_user_id, { paise: toPaise(l.total), entries: l.entries || 0 }]));
    renderByLevel(); renderLegs();
  }
  async function refreshSummary(gen) {
    try {
      const [earn, legs] = await Promise.all([api(uid('/earnings')), api(uid('/earnings/by-leg'))]);
      if (gen === state.gen) applySummary(earn, legs);
    } catch (err) { if (gen === state.gen) handleError(err); }
  }
  const maxOf = (vals) => vals.reduce((m, v) => (v > m ? v : m), 0n);

  function renderByLevel() {
    const rows = [...state.byLevel.entries()].sort((a, b) => a[0] - b[0]);
    const max = maxOf(rows.map((r) => r[1]));
    const list = $('by-level');
    if (!rows.length) { list.replaceChildren(el('li', { class: 'muted', text: 'No earnings yet.' })); return; }
    list.replaceChildren(...rows.map(([level, p]) => {
      const label = `Level ${level}${level === 1 ? ' (direct)' : ''}`;
      return el('li', { 'data-level': level },
        el('span', { class: 'label', text: label }),
        el('span', { class: 'amount', text: rupees(paiseToStr(p)) }),
        bar(p, max, label));
    }));
  }
  function renderLegs() {
    const rows = [...state.legs.entries()].sort((a, b) => (b[1].paise > a[1].paise ? 1 : b[1].paise < a[1].paise ? -1 : 0));
    const max = maxOf(rows.map((r) => r[1].paise));
    const list = $('legs');
    if (!rows.length) { list.replaceChildren(el('li', { class: 'muted', text: 'No legs yet.' })); return; }
    list.replaceChildren(...rows.map(([leg, v]) => el('li', { 'data-leg': leg },
      el('span', { class: 'label' }, el('code', { title: leg, text: short(leg) }),
        el('span', { class: 'muted small', text: ` · ${v.entries} ${v.entries === 1 ? 'entry' : 'entries'}` })),
      el('span', { class: 'amount', text: rupees(paiseToStr(v.paise)) }),
      bar(v.paise, max, `Leg ${short(leg)}`))));
  }

  // ---------- ticker ----------
  function tickerRow(e) {
    const level = Number(e.level);
    const direct = e.direct ?? level === 1;
    const reversal = e.kind === 'reversal';
    const amt = String(e.amount).trim().replace(/^[-+]/, '');
    return el('li', { class: reversal ? 'reversal' : 'earning', 'data-earning-id': e.earning_id },
      el('span', { class: 'what', text: `Level ${level}${direct ? ' (direct)' : ''} ${reversal ? 'reversal' : 'earning'} ` }),
      el('strong', { class: 'amount', text: reversal ? `−₹${amt}` : `₹${amt}` }),
      el('span', { text: ' from ' }),
      el('code', { title: e.source_user_id, text: short(e.source_user_id) }),
      el('span', { class: 'muted small when' }, ' · ', when(e.created_at)));
  }
  function fillHistory(items) {
    const t = $('ticker');
    t.setAttribute('aria-live', 'off'); // don't read out the backlog
    for (const it of items) state.seen.add(`${it.kind}:${it.earning_id}`);
    t.replaceChildren(...items.slice(0, TICKER_MAX).map(tickerRow));
    if (!items.length) t.append(el('li', { class: 'muted empty', text: 'No activity yet. New earnings appear here live.' }));
    requestAnimationFrame(() => t.setAttribute('aria-live', 'polite'));
  }

  // A reversal may be sent either as a negative amount or as a positive amount with kind=reversal.
  function signedPaise(e) {
    const p = toPaise(e.amount);
    return e.kind === 'reversal' && p > 0n ? -p : p;
  }

  function onEarning(e, gen) {
    const key = `${e.kind}:${e.earning_id}`;
    if (state.seen.has(key)) return; // replayed after reconnect or already in history
    state.seen.add(key);
    if (e.total != null) { state.total = e.total; $('total').textContent = rupees(e.total); }
    const t = $('ticker');
    t.querySelector('li.empty')?.remove();
    t.prepend(tickerRow(e));
    while (t.children.length > TICKER_MAX) t.lastElementChild.remove();
    try {
      const d = signedPaise(e);
      const lvl = Number(e.level);
      state.byLevel.set(lvl, (state.byLevel.get(lvl) || 0n) + d);
      if (e.leg_user_id) {
        const leg = state.legs.get(e.leg_user_id) || { paise: 0n, entries: 0 };
        state.legs.set(e.leg_user_id, { paise: leg.paise + d, entries: leg.entries + 1 });
      }
      renderByLevel(); renderLegs();
      // Self-heal: if the per-level sum drifted from the server's total, re-fetch the summaries.
      let sum = 0n; for (const v of state.byLevel.values()) sum += v;
      if (e.total != null && sum !== toPaise(e.total)) scheduleSummary(gen);
    } catch { scheduleSummary(gen); }
    scheduleTree(gen);
  }
  function scheduleSummary(gen) {
    if (state.summaryTimer) return;
    state.summaryTimer = setTimeout(() => { state.summaryTimer = null; refreshSummary(gen); }, 1000);
  }

  // ---------- tree (re-fetched at most every 5 s) ----------
  function scheduleTree(gen) {
    if (state.treeTimer) return;
    const wait = Math.max(0, state.treeLast + TREE_MIN_INTERVAL_MS - Date.now());
    state.treeTimer = setTimeout(() => { state.treeTimer = null; loadTree(gen); }, wait);
  }
  async function loadTree(gen) {
    state.treeLast = Date.now();
    try {
      const data = await api(uid('/tree?depth=3'));
      if (gen === state.gen) renderTree(data.root);
    } catch (err) { if (gen === state.gen) handleError(err); }
  }
  function renderTree(root) {
    const box = $('tree');
    if (!root) { box.replaceChildren(el('p', { class: 'muted', text: 'No tree data.' })); return; }
    const open = new Set([...box.querySelectorAll('details[open]')].map((d) => d.dataset.node));
    const closed = new Set([...box.querySelectorAll('details:not([open])')].map((d) => d.dataset.node));
    let max = 0n;
    (function walk(n) { if (n.depth > 0) { const p = toPaise(n.contributed || '0'); if (p > max) max = p; } (n.children || []).forEach(walk); })(root);
    const node = (n) => {
      const p = toPaise(n.contributed || '0');
      const name = n.display_name || short(n.user_id);
      const who = n.depth === 0 && n.user_id === state.me?.user_id ? 'You' : name;
      const kids = n.children || [];
      const head = el('span', { class: 'node' },
        el('code', { title: n.user_id, text: who }),
        n.status && n.status !== 'active' ? el('span', { class: 'badge', text: n.status }) : null,
        n.depth > 0 ? el('span', { class: 'muted small', text: ` L${n.depth}` }) : null,
        n.depth > 0 ? el('span', { class: 'amount', text: rupees(n.contributed) }) : null,
        n.depth > 0 ? bar(p, max, `${short(n.user_id)} contributed`) : null,
        kids.length ? el('span', { class: 'muted small', text: `${kids.length} referral${kids.length === 1 ? '' : 's'}` }) : null);
      if (!kids.length) return el('li', { 'data-node': n.user_id }, el('div', { class: 'leaf' }, head));
      const isOpen = open.has(n.user_id) || (!closed.has(n.user_id) && n.depth < 2);
      const det = el('details', { 'data-node': n.user_id, open: isOpen },
        el('summary', {}, head),
        el('ul', {}, ...kids.map(node)));
      return el('li', { 'data-node': n.user_id }, det);
    };
    box.replaceChildren(el('ul', { class: 'tree-root', 'aria-label': 'Referral tree' }, node(root)));
  }

  // ---------- live stream: fetch + manual SSE parsing (EventSource cannot send headers) ----------
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function streamLoop(gen) {
    let attempt = 0;
    while (gen === state.gen) {
      const ctrl = new AbortController();
      state.streamCtrl = ctrl;
      setStatus(attempt ? 'reconnecting' : 'connecting');
      let dropped = false;
      try {
        const headers = { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' };
        if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
        const res = await fetch(uid('/earnings/stream'), { headers, signal: ctrl.signal, cache: 'no-store' });
        if (!res.ok || !res.body) throw await problemOf(res);
        if (gen !== state.gen) return;
        setStatus('live');
        attempt = 0;
        await readSse(res.body, ctrl, (ev) => {
          if (gen !== state.gen) return;
          if (ev.event === 'earning') {
            try { onEarning(JSON.parse(ev.data), gen); } catch (err) { console.warn('bad earning event', err); }
          } else if (ev.event === 'dropped') {
            dropped = true;
            ctrl.abort();
          }
        });
      } catch (err) {
        if (gen !== state.gen) return;
        if (err instanceof ApiError) {
          if (err.status === 401 || err.status === 403) { handleError(err); return; }
          showAlert(`Live updates: ${err.message}`);
        }
      }
      if (gen !== state.gen) return;
      setStatus('reconnecting');
      const delay = dropped ? 250 : Math.min(30000, 1000 * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt = Math.min(attempt + 1, 10);
      await sleep(delay);
    }
  }

  async function readSse(body, ctrl, onEvent) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = '', data = [], event = '', idBuf = state.lastEventId;
    let idle = setTimeout(() => ctrl.abort(), STREAM_IDLE_MS);
    const line = (l) => {
      if (l === '') { // end of frame
        if (idBuf != null) state.lastEventId = idBuf;
        if (data.length) onEvent({ event: event || 'message', data: data.join('\n'), id: idBuf });
        data = []; event = '';
        return;
      }
      if (l[0] === ':') return; // keep-alive comment
      const i = l.indexOf(':');
      const field = i < 0 ? l : l.slice(0, i);
      let value = i < 0 ? '' : l.slice(i + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id' && !value.includes('\0')) idBuf = value;
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        clearTimeout(idle);
        idle = setTimeout(() => ctrl.abort(), STREAM_IDLE_MS);
        buf += dec.decode(value, { stream: true });
        for (;;) {
          const i = buf.search(/[\r\n]/);
          if (i < 0 || (buf[i] === '\r' && i === buf.length - 1)) break; // wait for a possible \n
          const l = buf.slice(0, i);
          buf = buf.slice(i + (buf[i] === '\r' && buf[i + 1] === '\n' ? 2 : 1));
          line(l);
          if (ctrl.signal.aborted) return;
        }
      }
    } finally {
      clearTimeout(idle);
      reader.cancel().catch(() => { /* already closed */ });
    }
  }

  // ---------- wiring ----------
  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('token').value); });
    $('sign-out').addEventListener('click', () => signOut('You have signed out.'));
    $('view-user-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const id = $('view-user-id').value.trim();
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
        showAlert('Please enter a user id in UUID form, e.g. 3f2a9c1e-0b6d-4c1f-9a57-1d2e3f4a5b6c.');
        $('view-user-id').focus();
        return;
      }
      showAlert('');
      openUser(id);
    });
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) { $('token').value = ''; signIn(saved); } else { showView(false); }
  });
})();
