// beprepared labeling client. Runs as the js_on_load of one gr.HTML component (Gradio passes `element`,
// `props` and `server`). Everything a key press does happens here, locally: the next images are already
// downloaded and decoded, the decision is queued in an outbox that the server acknowledges only once the
// label journal has it on disk, and the screen says when anything is not saved yet.
//
// Unacknowledged writes also live in localStorage, so a reload or a crash of the page sends them later (once:
// the journal is idempotent by request id); when the app's process is gone the page says so, keeps working
// from what it has, and reconnects by itself.
//
// Sections: constants · utilities · server calls, the outbox and the connection · tab state · DOM · image
// pool · actions per kind (filter, tag, caption, rank) · navigation · keys, touch, buttons · polling · boot.
(() => {
  'use strict';

  // ---- constants ------------------------------------------------------------------------------------
  const PRELOAD_AHEAD = 12;     // next images downloaded and decoded before they are needed
  const PAIRS_AHEAD = 8;        // HumanRank: next pairs decoded ahead (2 images each)
  const PAIRS_LOW_WATER = 10;   // HumanRank: ask for more pairs when fewer than this are queued
  const KEEP_BEHIND = 3;        // previous images kept decoded for ← / undo
  const POOL_MAX = 56;           // decoded images kept (display copies: ≤ 1600 px)
  const IMAGE_SLOTS = 4;        // image downloads at once (of the browser's 6 connections per host)
  const PAGE_LOW_WATER = 60;    // fetch the next page when fewer images than this are left
  const POLL_ACTIVE_MS = 3000;  // counts, new images, labels from other tabs/devices
  const POLL_OTHER_MS = 12000;
  const CALL_TIMEOUT_MS = 15000;
  const BATCH_MAX = 200;
  const CAPTION_DEBOUNCE_MS = 600;
  const SWIPE_MIN_PX = 60;
  const STORE_KEY = 'bp-outbox:' + location.host + location.pathname;  // pending writes of every page instance
  const STALE_MS = 5000;        // a stored outbox not refreshed for this long belongs to a page that is gone
  const PROBE_MS = 1000;        // while the app is away: how often to knock

  const CFG = JSON.parse(JSON.stringify(props.cfg || {}));
  const TABS = CFG.tabs || [];
  if (window.__bp && window.__bp.destroy) window.__bp.destroy();  // a re-mount replaces the old instance
  const listeners = [];
  const timers = new Set();

  // ---- utilities ------------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) el.append(c);
    return el;
  }
  function listen(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    listeners.push(() => target.removeEventListener(type, fn, opts));
  }
  function later(fn, ms) {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
    return t;
  }
  function requestId() {  // crypto.randomUUID needs a secure context; a phone on the LAN is plain http
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
  }
  const sameJSON = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  // A pair shows each image at half the width: HumanRank asks for the smaller copy (`size: 'pair'`).
  const displayUrl = (obj, size) => new URL('display/' + obj + (size ? '?size=' + size : ''), document.baseURI).toString();
  const poolKey = item => item.obj + (item.size ? '@' + item.size : '');

  // ---- server calls and the outbox --------------------------------------------------------------------
  function call(name, payload) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer within 15 s')), CALL_TIMEOUT_MS);
      Promise.resolve().then(() => server['lab_' + name](payload)).then(r => {
        clearTimeout(timer);
        if (r && r.ok) resolve(r);
        else reject(new Error((r && r.error) || 'the server did not answer (restarting? signed out?)'));
      }, e => { clearTimeout(timer); reject(e instanceof Error ? e : new Error(String(e))); });
    }).catch(e => {
      if (!/^(gone|no such tab|writes must|not a ranking)/.test(e.message)) probe();
      throw e;
    });
  }

  // The connection: any failed call makes the page knock on /beprepared/health until the app answers again
  // (a code server killed and restarted by its supervisor takes a few seconds); meanwhile it says so.
  const conn = { away: false, probing: false, since: 0 };
  async function probe() {
    if (conn.probing) return;
    conn.probing = true;
    let ok = false;
    try {
      const ctl = new AbortController();
      const t = setTimeout(() => ctl.abort(), 2000);
      const r = await fetch(new URL('beprepared/health', document.baseURI), { cache: 'no-store', signal: ctl.signal, credentials: 'same-origin' });
      clearTimeout(t);
      ok = r.ok;
    } catch (e) { ok = false; }
    conn.probing = false;
    if (!ok) {
      if (!conn.away) { conn.away = true; conn.since = Date.now(); renderConnection(); }
      later(probe, PROBE_MS);
    } else if (conn.away) reconnected();
  }
  function reconnected() {
    conn.away = false;
    renderConnection();
    toast('Reconnected');
    outbox.failures = 0;
    outbox.retryAt = 0;
    flush();
    for (const entry of [...pool.values()]) if (entry.failed) drop(entry);  // images that failed meanwhile
    for (const tab of tabs) {
      if (!tab.loaded) { if (tab === active) load(tab); continue; }
      tab.lastPoll = 0;
      if (tab.cfg.kind === 'rank') RANK.refill(tab);
    }
    if (active) render(active);
  }

  // Pending writes are mirrored to localStorage under this page's instance id, so that the page opened next
  // (a reload, or after a crash) adopts and sends what this one could not.
  const instance = requestId();
  function storedOutboxes() {
    try { return JSON.parse(localStorage.getItem(STORE_KEY) || '{}') || {}; } catch (e) { return {}; }
  }
  function persist(closed) {
    try {
      const all = storedOutboxes();
      if (outbox.pending.length) {
        all[instance] = { t: Date.now(), closed: !!closed, writes: outbox.pending.map(({ rid, tab, id, value }) => ({ rid, tab, id, value })) };
      } else delete all[instance];
      if (Object.keys(all).length) localStorage.setItem(STORE_KEY, JSON.stringify(all));
      else localStorage.removeItem(STORE_KEY);
      outbox.persisted = true;
    } catch (e) { outbox.persisted = false; /* storage full or disabled: only the warning before leaving is left */ }
  }
  function adopt() {  // take over the pending writes of pages that are gone (closed, reloaded, crashed)
    const all = storedOutboxes();
    const mine = new Set(outbox.pending.map(w => w.rid));
    let taken = 0;
    for (const [id, stored] of Object.entries(all)) {
      if (id === instance || !stored || !(stored.closed || Date.now() - stored.t > STALE_MS)) continue;
      for (const w of stored.writes || []) {
        if (mine.has(w.rid) || !TABS.some(t => t.key === w.tab)) continue;
        outbox.pending.push({ ...w, move: null, t: performance.now(), adopted: true });
        mine.add(w.rid);
        taken += 1;
      }
      delete all[id];
    }
    if (!taken && Object.keys(all).length === Object.keys(storedOutboxes()).length) return 0;
    try { localStorage.setItem(STORE_KEY, JSON.stringify(all)); } catch (e) { /* see persist */ }
    persist();
    return taken;
  }

  // pending: not acknowledged yet (sent or not); acked: the latest acknowledged, with their journal ids.
  const outbox = { pending: [], inflight: false, failures: 0, error: '', retryAt: 0, acked: [], ackedTotal: 0 };

  function enqueue(tab, id, value, move) {
    const rid = requestId();
    outbox.pending.push({ rid, tab: tab.cfg.key, id, value, move, t: performance.now() });
    persist();
    renderSave();
    flush();
    return rid;
  }
  function hasPending(tabKey, id) {
    return outbox.pending.some(w => w.tab === tabKey && w.id === id);
  }
  async function flush() {
    if (outbox.inflight || !outbox.pending.length || Date.now() < outbox.retryAt) return;
    const batch = outbox.pending.slice(0, BATCH_MAX);
    outbox.inflight = true;
    renderSave();
    try {
      const r = await call('record', { writes: batch.map(({ rid, tab, id, value }) => ({ rid, tab, id, value })) });
      settle(batch, r.results || []);
      outbox.failures = 0;
      outbox.error = '';
    } catch (e) {
      outbox.failures += 1;
      outbox.error = e.message;
      const delay = Math.min(250 * 2 ** (outbox.failures - 1), 8000) * (0.75 + Math.random() / 2);
      outbox.retryAt = Date.now() + delay;
      later(flush, delay + 5);
    } finally {
      outbox.inflight = false;
      renderSave();
    }
    if (outbox.failures === 0 && outbox.pending.length) flush();
  }
  function settle(batch, results) {
    const byRid = new Map(results.map(r => [r.rid, r]));
    const done = new Set();
    for (const w of batch) {
      const r = byRid.get(w.rid);
      if (!r) continue;
      done.add(w.rid);
      if (r.status === 'ok') {
        outbox.acked.push({ ...w, j: r.j, ta: performance.now() });
        outbox.ackedTotal += 1;
      } else toast('Not saved: ' + (r.error || 'refused by the server'), true);
    }
    outbox.pending = outbox.pending.filter(w => !done.has(w.rid));
    persist();
    if (outbox.acked.length > 5000) outbox.acked.splice(0, 1000);
  }

  // ---- tab state --------------------------------------------------------------------------------------
  function newTab(cfg) {
    return {
      cfg, items: [], start: 0, cursor: 0, moreBefore: false, moreAfter: false, journal: 0,
      counts: null, busy: false, loaded: false, loading: null, error: '', history: [],
      draft: null, lastPoll: 0, polling: false, pairs: [], fetchingPairs: false,
    };
  }
  const tabs = TABS.map(newTab);
  let active = null;

  const isLabeled = (tab, v) =>
    v != null && (tab.cfg.kind === 'filter' || v.version === tab.cfg.version);
  const isRejected = (tab, v) =>
    v != null && (tab.cfg.kind === 'filter' ? !v.keep : tab.cfg.kind === 'tag' && !!v.rejected);
  const current = tab => tab.items[tab.cursor] || null;
  const indexOf = (tab, id) => tab.items.findIndex(it => it.id === id);

  const bucket = (tab, v) => (!isLabeled(tab, v) ? 'remaining' : isRejected(tab, v) ? 'rejected' : 'kept');
  function label(tab, id, value) {
    // Counts move at once; each write carries its move so server counts (which lag unsaved writes) can be
    // corrected until the journal has it.
    const item = tab.items[indexOf(tab, id)];
    let move = null;
    if (item) {
      move = [bucket(tab, item.value), bucket(tab, value)];
      item.value = value;
      if (tab.counts) { tab.counts[move[0]] -= 1; tab.counts[move[1]] += 1; }
    }
    enqueue(tab, id, value, move);
  }
  function serverCounts(tab, counts, journal) {
    const c = { ...counts };
    const unseen = w => w.tab === tab.cfg.key && w.move && (w.j == null || w.j > journal);
    for (const w of [...outbox.pending, ...outbox.acked.filter(unseen)]) {
      if (!unseen(w)) continue;
      c[w.move[0]] -= 1;
      c[w.move[1]] += 1;
    }
    return c;
  }

  // ---- DOM ----------------------------------------------------------------------------------------------
  const root = element.querySelector('.bp-app') || element.appendChild(h('div', { class: 'bp-app' }));
  root.textContent = '';
  const ui = {};
  ui.tabbar = h('nav', { class: 'bp-tabs', role: 'tablist' });
  ui.save = h('div', { class: 'bp-save', 'data-state': 'saved', 'aria-live': 'polite' });
  ui.stats = h('div', { class: 'bp-stats' });
  ui.where = h('div', { class: 'bp-where' });
  ui.frame = h('div', { class: 'bp-frame' });
  ui.side = h('div', { class: 'bp-side' });
  ui.controls = h('div', { class: 'bp-controls' });
  ui.legend = h('div', { class: 'bp-keys' });
  ui.toast = h('div', { class: 'bp-toast', role: 'status' });
  ui.away = h('div', { class: 'bp-away', role: 'alert', hidden: true });
  root.append(
    h('header', { class: 'bp-top' }, ui.tabbar),
    ui.away,
    h('div', { class: 'bp-info' }, ui.stats, ui.where, ui.save),
    h('main', { class: 'bp-stage' }, ui.frame, ui.side),
    ui.controls, ui.legend, ui.toast,
  );

  // Rendering is incremental: a key press changes the image, a few texts and classes, nothing else.
  function renderTabs() {
    const signature = tabs.map(t => (t === active ? '*' : '') + (t.counts ? t.counts.remaining : '…')).join();
    if (signature === ui.tabsSignature) return;
    ui.tabsSignature = signature;
    ui.tabbar.textContent = '';
    for (const tab of tabs) {
      const left = tab.counts ? tab.counts.remaining : '…';
      const b = h('button', {
        class: 'bp-tab' + (tab === active ? ' active' : ''), role: 'tab', type: 'button',
        'aria-selected': String(tab === active), 'data-tab': tab.cfg.key,
        title: `${tab.cfg.workflow} / ${tab.cfg.stage} (${tab.cfg.kind}, domain ${tab.cfg.domain})`,
        onclick: ev => { ev.currentTarget.blur(); activate(tab); },
      },
      h('span', { class: 'bp-tab-name', text: tab.cfg.stage }),
      h('span', { class: 'bp-tab-wf', text: tab.cfg.workflow }),
      h('span', { class: 'bp-badge' + (left === 0 ? ' zero' : ''), text: `${left} left` }));
      ui.tabbar.append(b);
    }
  }
  function renderConnection() {
    root.dataset.connection = conn.away ? 'away' : 'ok';
    ui.away.hidden = !conn.away;
    ui.away.textContent = 'The labeling app is not answering (restarting?) — reconnecting by itself… ' +
      'Keep going: your labels are kept in this browser and sent once it is back.';
  }
  function renderSave() {
    const n = outbox.pending.length;
    let state = 'saved', text = 'All saved ✓';
    if (n && outbox.failures) {
      state = 'failed';
      text = `SAVE FAILED — retrying · ${n} unsaved` + (outbox.error ? ` (${outbox.error})` : '');
    } else if (n && outbox.inflight) { state = 'saving'; text = `Saving ${n}…`; }
    else if (n) { state = 'unsaved'; text = `Unsaved ${n}`; }
    ui.save.dataset.state = state;
    ui.save.textContent = text;
    root.dataset.unsaved = String(n);
    root.dataset.acked = String(outbox.ackedTotal);
  }
  const STATS = ['kept', 'rejected', 'remaining', 'total'];
  ui.statValues = {};
  for (const k of STATS) {
    ui.statValues[k] = h('b');
    ui.stats.append(h('span', { class: 'bp-stat ' + k }, ui.statValues[k], ' ' + k));
  }
  ui.busy = h('span', { class: 'bp-busy', text: 'a run holds the store: the list may lag' });
  ui.stats.append(ui.busy);
  ui.note = h('span', { class: 'bp-note' });  // a smart stage's model: accuracy, images it decided
  ui.stats.append(ui.note);
  function renderStats(tab) {
    const c = tab.counts;
    ui.stats.hidden = !c || tab.cfg.kind === 'rank';  // a ranking shows its own counters (RANK.update)
    for (const k of STATS) ui.statValues[k].textContent = c ? String(c[k]) : '';
    ui.busy.hidden = !tab.busy;
    ui.note.textContent = tab.note || '';
    ui.note.hidden = !tab.note;
  }
  function renderWhere(tab) {
    if (tab.cfg.kind === 'rank') { RANK.where(tab); return; }
    const item = current(tab);
    const total = tab.counts ? tab.counts.total : tab.start + tab.items.length;
    ui.where.textContent = item
      ? `${tab.start + tab.cursor + 1} / ${total}` + (item.name ? ` · ${item.name}` : '') +
        (item.w && item.h ? ` · ${item.w}×${item.h}` : '')
      : '';
  }
  function toast(text, bad) {
    ui.toast.textContent = text;
    ui.toast.dataset.bad = bad ? '1' : '';
    ui.toast.classList.add('show');
    clearTimeout(ui.toastTimer);
    ui.toastTimer = setTimeout(() => ui.toast.classList.remove('show'), bad ? 5000 : 1600);
  }

  // ---- image pool: download and decode ahead, show a decoded element in one frame -----------------------
  // Downloads go through a small queue (at most IMAGE_SLOTS at once, the image on screen first): a browser
  // opens only 6 connections per host, and a save must never wait behind a row of image downloads.
  const pool = new Map();  // objectid → entry {img, ready, state: queued|loading|done, ...}
  const loads = { queue: [], active: 0 };
  function pooled(item) {
    const key = poolKey(item);
    let entry = pool.get(key);
    if (!entry) {
      const img = new Image();
      img.decoding = 'async';
      img.className = 'bp-img';
      img.alt = item.name || 'image';
      img.draggable = false;
      entry = { img, key, obj: item.obj, size: item.size, state: 'queued', tries: 0 };
      entry.ready = new Promise(resolve => { entry.resolve = resolve; });
      pool.set(key, entry);
      loads.queue.push(entry);
      pump();
    }
    return entry;
  }
  function pump() {
    while (loads.active < IMAGE_SLOTS && loads.queue.length) download(loads.queue.shift());
  }
  async function download(entry) {
    loads.active += 1;
    entry.state = 'loading';
    entry.abort = new AbortController();
    let retry = false;
    try {
      const r = await fetch(displayUrl(entry.obj, entry.size), { signal: entry.abort.signal, credentials: 'same-origin' });
      if (!r.ok) { retry = r.status >= 500; throw new Error(String(r.status)); }
      entry.url = URL.createObjectURL(await r.blob());
      entry.img.src = entry.url;
      await entry.img.decode();
      entry.state = 'done';
      entry.resolve(true);
    } catch (e) {
      retry = retry || e instanceof TypeError;  // no answer (the app restarting): try again
      if (entry.state !== 'dropped' && retry && entry.tries++ < 8) {
        entry.state = 'queued';
        later(() => { if (entry.state === 'queued') { loads.queue.unshift(entry); pump(); } }, 1000);
      } else { entry.failed = true; entry.resolve(false); }
    } finally {
      loads.active -= 1;
      pump();
    }
  }
  function drop(entry) {
    entry.state = 'dropped';
    if (entry.abort) entry.abort.abort();
    loads.queue = loads.queue.filter(e => e !== entry);
    if (entry.url) URL.revokeObjectURL(entry.url);
    entry.img.removeAttribute('src');
    entry.resolve(false);
    pool.delete(entry.key);
  }
  function preload(tab) {
    let wanted;
    if (tab.cfg.kind === 'rank') wanted = RANK.wanted(tab);
    else {
      const at = [tab.cursor, tab.cursor + 1, ...upcoming(tab, PRELOAD_AHEAD)];
      for (let i = Math.max(0, tab.cursor - KEEP_BEHIND); i < tab.cursor; i++) at.push(i);
      wanted = at.map(i => tab.items[i]).filter(Boolean);
    }
    const keep = new Set();
    for (const item of wanted) { pooled(item); keep.add(poolKey(item)); }
    // Downloads of images left behind are cancelled; the ones wanted go in order of need.
    for (const entry of [...pool.values()]) {
      if (!keep.has(entry.key) && (entry.state === 'queued' || entry.state === 'loading')) drop(entry);
    }
    const rank = new Map();
    wanted.forEach((item, n) => { if (!rank.has(poolKey(item))) rank.set(poolKey(item), n); });
    loads.queue.sort((a, b) => (rank.get(a.key) ?? 99) - (rank.get(b.key) ?? 99));
    pump();
    if (pool.size > POOL_MAX) {
      for (const entry of [...pool.values()]) if (!keep.has(entry.key) && pool.size > POOL_MAX) drop(entry);
    }
  }
  const paints = [];  // keydown → image decoded → 2 animation frames, ms (for the benchmark)
  const superseded = { count: 0 };  // shows the user had already left when their image could paint
  function showImage(tab, t0) {
    const item = current(tab);
    const frame = ui.frame;
    frame.dataset.state = !item ? 'empty' : !isLabeled(tab, item.value) ? 'open' : isRejected(tab, item.value) ? 'rejected' : 'kept';
    if (!item) return;
    const entry = pooled(item);
    if (frame.firstChild !== entry.img) frame.replaceChildren(entry.img);
    entry.ready.then(ok => {
      if (!ok && current(tab) === item) frame.replaceChildren(h('div', { class: 'bp-broken', text: `Cannot display ${item.name || item.obj}` }));
      if (t0 == null) return;
      requestAnimationFrame(() => requestAnimationFrame(() => {
        if (current(tab) !== item || active !== tab) { superseded.count += 1; return; }
        paints.push(performance.now() - t0);
        if (paints.length > 2000) paints.splice(0, 1000);
      }));
    });
  }

  // ---- rendering one tab --------------------------------------------------------------------------------
  function render(tab, t0) {
    if (tab !== active) { if (active) renderTabs(); return; }
    renderTabs();
    renderStats(tab);
    renderWhere(tab);
    if (!tab.loaded) {
      ui.frame.dataset.state = 'empty';
      ui.frame.replaceChildren(h('div', { class: 'bp-msg', text: tab.error || 'Loading…' }));
      ui.side.textContent = '';
      ui.controls.textContent = '';
      ui.mounted = null;
      return;
    }
    const kind = KINDS[tab.cfg.kind];
    if (ui.mounted !== tab) {  // the controls of this tab's kind, built once per activation
      root.dataset.kind = tab.cfg.kind;
      ui.side.textContent = '';
      kind.mount(tab);
      ui.mounted = tab;
    }
    if (kind.render) kind.render(tab, t0);
    else if (!current(tab)) renderDone(tab);
    else showImage(tab, t0);
    kind.update(tab);
    preload(tab);
  }
  function renderDone(tab) {
    ui.frame.dataset.state = 'empty';
    const c = tab.counts || { remaining: 0, total: 0 };
    const lines = [];
    if (tab.moreAfter) lines.push(h('p', { text: 'Loading more images…' }));
    else if (c.total === 0) lines.push(h('p', { text: `No image has reached this stage yet (it follows “${tab.cfg.upstream}”).` }));
    else if (c.remaining === 0) lines.push(h('p', { class: 'bp-big', text: `All ${c.total} images are labeled.` }));
    else lines.push(h('p', { text: `${c.remaining} image(s) earlier in the list still wait.` }),
      h('button', { type: 'button', class: 'bp-btn', text: 'Go to the first unlabeled image', onclick: () => restart(tab) }));
    lines.push(h('p', { class: 'bp-dim', text: 'New images appear here as runs finish; no reload needed.' }));
    lines.push(h('button', { type: 'button', class: 'bp-btn bp-continue', text: 'Continue ⏎', onclick: () => continueOn(tab) }));
    ui.frame.replaceChildren(h('div', { class: 'bp-done' }, ...lines));
  }
  function button(cls, label, key, fn) {
    return h('button', {
      type: 'button', class: 'bp-btn ' + cls, title: key ? `${label} (${key})` : label,
      onclick: ev => { ev.currentTarget.blur(); fn(ev.timeStamp); },
    }, h('span', { class: 'bp-btn-label', text: label }), key ? h('kbd', { text: key }) : null);
  }
  function legend(rows) {
    ui.legend.replaceChildren(...rows.map(([k, v]) => h('span', {}, h('kbd', { text: k }), ' ' + v)));
  }

  // ---- navigation ---------------------------------------------------------------------------------------
  function* upcoming(tab, n) {  // the indices shown next, in order (what a decision advances through)
    let i = tab.cursor;
    for (let k = 0; k < n; k++) {
      i = nextIndex(tab, i, true);
      if (i >= tab.items.length) return;
      yield i;
    }
  }
  function nextIndex(tab, from, frontier) {
    // At the frontier (labeling new images), skip images another device labeled meanwhile; when reviewing
    // older decisions, step one by one.
    let i = from + 1;
    if (frontier) while (i < tab.items.length && isLabeled(tab, tab.items[i].value)) i++;
    return i;
  }
  function go(tab, index, t0) {
    tab.cursor = Math.max(0, Math.min(index, tab.items.length));
    tab.draft = null;
    render(tab, t0);
    ensurePages(tab);
  }
  function advance(tab, wasLabeled, t0) { go(tab, nextIndex(tab, tab.cursor, !wasLabeled), t0); }
  function back(tab, t0) {
    if (tab.cursor > 0) go(tab, tab.cursor - 1, t0);
    else if (tab.moreBefore) loadBefore(tab).then(() => go(tab, tab.cursor - 1, t0));
  }
  function decide(tab, value, t0) {  // record a new label for the current image and remember it for undo
    const item = current(tab);
    if (!item) return false;
    const before = item.value;
    if (sameJSON(before, value)) return isLabeled(tab, before);
    tab.history.push({ id: item.id, prev: before, next: value });
    label(tab, item.id, value);
    return true;
  }
  function undo(tab, t0) {
    if (tab.cfg.kind === 'rank') { RANK.undo(tab, t0); return; }
    const last = tab.history.pop();
    if (!last) { toast('Nothing to undo'); return; }
    const i = indexOf(tab, last.id);
    label(tab, last.id, last.prev);
    toast('Undone');
    if (i >= 0) go(tab, i, t0);
  }
  function continueOn(tab) {
    // Prefer the stages below this one in its workflow, then any tab with work; the next stage of the
    // workflow also when it is still empty: Dagster's run of the stages between may be in flight, and its
    // images appear there without a reload.
    const workflow = t => t.cfg.key.split('/')[0];
    const below = tabs.slice(tabs.indexOf(tab) + 1).filter(t => workflow(t) === workflow(tab));
    const hasWork = t => t !== tab && t.counts && t.counts.remaining > 0;
    const next = below.find(hasWork) || tabs.find(hasWork) || below[0];
    if (next) {
      activate(next);
      if (!hasWork(next)) toast('Your labels are being applied; this stage fills in as Dagster runs.');
    } else toast('Everything here is labeled; Dagster picks the labels up within seconds.');
  }

  // ---- actions per kind ---------------------------------------------------------------------------------
  const FILTER = {
    mount(tab) {
      this.judges = [
        button('bp-reject', 'Reject', '↓ S', t => FILTER.judge(active, false, t)),
        button('bp-keep', 'Keep', '↑ W', t => FILTER.judge(active, true, t)),
      ];
      ui.controls.replaceChildren(
        this.judges[0],
        button('bp-nav', 'Back', '← A', t => back(active, t)),
        button('bp-nav', 'Next', '→ D', t => FILTER.next(active, t)),
        this.judges[1],
      );
      legend([['↑ W', 'keep'], ['↓ S', 'reject'], ['← A', 'back'], ['→ D', 'next (judged)'], ['Z', 'undo'], ['⏎', 'continue'], ['swipe', '→ keep · ← reject']]);
    },
    update(tab) {
      for (const b of this.judges) b.disabled = !current(tab);
    },
    judge(tab, keep, t0) {
      const item = current(tab);
      if (!item) return;
      const was = isLabeled(tab, item.value);
      decide(tab, { keep }, t0);
      advance(tab, was, t0);
    },
    next(tab, t0) {
      const item = current(tab);
      if (item && !isLabeled(tab, item.value)) { toast('Keep (↑) or reject (↓) this one first'); return; }
      if (item) go(tab, tab.cursor + 1, t0);
    },
    key(tab, k, e) {
      if (k === 'ArrowUp' || k === 'w') this.judge(tab, true, e.timeStamp);
      else if (k === 'ArrowDown' || k === 's') this.judge(tab, false, e.timeStamp);
      else if (k === 'ArrowRight' || k === 'd') this.next(tab, e.timeStamp);
      else return false;
      return true;
    },
    swipe(tab, dir, t0) { this.judge(tab, dir > 0, t0); },
  };

  const TAG = {
    all: tab => tab.cfg.rows.flat(),
    draft(tab) {
      const item = current(tab);
      if (!tab.draft && item) {
        const v = item.value || {};
        tab.draft = { tags: new Set(v.tags || []), rejected: !!v.rejected, dirty: false };
      }
      return tab.draft;
    },
    value(tab) {
      const d = this.draft(tab);
      return { tags: this.all(tab).filter(t => d.tags.has(t)), rejected: d.rejected, version: tab.cfg.version };
    },
    mount(tab) {
      const all = this.all(tab);
      this.buttons = new Map();
      const rows = tab.cfg.rows.map(row => h('div', { class: 'bp-tagrow' }, ...row.map(tag => {
        const i = all.indexOf(tag);
        const key = i < 9 ? String(i + 1) : i === 9 ? '0' : '';
        const b = button('bp-tag', tag, key, () => this.toggle(active, tag));
        this.buttons.set(tag, b);
        return b;
      })));
      ui.side.replaceChildren(...rows);
      this.rejectButton = button('bp-reject', 'Reject', 'S', t => this.reject(active, t));
      ui.controls.replaceChildren(
        this.rejectButton,
        button('bp-nav', 'Back', '← A', t => this.back(active, t)),
        button('bp-keep', 'Save & next', '→ D', t => this.commitNext(active, t)),
      );
      legend([['1–9 0', 'toggle tag'], ['S ↓', 'toggle reject'], ['→ D ↑ W', 'save & next'], ['← A', 'back'], ['Z', 'undo'], ['⏎', 'continue']]);
    },
    update(tab) {
      const d = this.draft(tab);
      for (const [tag, b] of this.buttons) {
        const on = !!(d && d.tags.has(tag));
        b.classList.toggle('on', on);
        b.setAttribute('aria-pressed', String(on));
        b.disabled = !d;
      }
      this.rejectButton.classList.toggle('on', !!(d && d.rejected));
      this.rejectButton.querySelector('.bp-btn-label').textContent = d && d.rejected ? 'Rejected' : 'Reject';
      this.rejectButton.disabled = !d;
    },
    toggle(tab, tag) {
      const d = this.draft(tab);
      if (!d) return;
      if (d.tags.has(tag)) d.tags.delete(tag); else d.tags.add(tag);
      d.dirty = true;
      this.update(tab);
    },
    commit(tab, force) {
      const item = current(tab);
      const d = this.draft(tab);
      if (!item || !d || (!force && !d.dirty)) return;
      decide(tab, this.value(tab));
      d.dirty = false;
    },
    commitNext(tab, t0) {
      const item = current(tab);
      if (!item) return;
      const was = isLabeled(tab, item.value);
      this.commit(tab, true);
      advance(tab, was, t0);
    },
    reject(tab, t0) {
      const d = this.draft(tab);
      if (!d) return;
      d.rejected = !d.rejected;
      d.dirty = true;
      if (d.rejected) this.commitNext(tab, t0);
      else { this.commit(tab, true); render(tab); }
    },
    back(tab, t0) { this.commit(tab, false); back(tab, t0); },
    key(tab, k, e) {
      const all = this.all(tab);
      if (/^[0-9]$/.test(k)) {
        const i = k === '0' ? 9 : Number(k) - 1;
        if (i < all.length) this.toggle(tab, all[i]);
      } else if (k === 'ArrowRight' || k === 'd' || k === 'ArrowUp' || k === 'w') {
        if (k === 'ArrowUp' || k === 'w') { const d = this.draft(tab); if (d && d.rejected) { d.rejected = false; d.dirty = true; } }
        this.commitNext(tab, e.timeStamp);
      } else if (k === 'ArrowDown' || k === 's') this.reject(tab, e.timeStamp);
      else if (k === 'ArrowLeft' || k === 'a') this.back(tab, e.timeStamp);
      else return false;
      return true;
    },
    swipe(tab, dir, t0) {
      if (dir > 0) this.key(tab, 'ArrowUp', { timeStamp: t0 });
      else { const d = this.draft(tab); if (d && !d.rejected) this.reject(tab, t0); }
    },
  };

  const CAPTION = {
    text: null,
    mount(tab) {
      if (!this.text) {
        this.text = h('textarea', { class: 'bp-caption', rows: '6', spellcheck: 'true', 'aria-label': 'Caption' });
        listen(this.text, 'input', () => this.typed(active));
      }
      // One text area serves every caption tab: refill it with this tab's caption (leaving a tab saved its text).
      tab.draft = null;
      ui.side.replaceChildren(this.text, h('div', { class: 'bp-dim bp-hint', text: 'Saved automatically. Alt/Ctrl + ← → move between images.' }));
      this.next = button('bp-keep', 'Save & next', 'Alt →', t => this.move(active, 1, t));
      ui.controls.replaceChildren(
        button('bp-nav', 'Back', 'Alt ←', t => this.move(active, -1, t)),
        button('bp-nav', 'Undo', 'Ctrl Z', t => undo(active, t)),
        this.next,
      );
      legend([['Alt/Ctrl ← →', 'back / save & next'], ['Ctrl ⏎', 'save & next'], ['Esc', 'leave the text'], ['← → A D', 'outside the text'], ['Ctrl Z', 'undo (outside the text)']]);
    },
    update(tab) {
      const item = current(tab);
      this.text.disabled = this.next.disabled = !item;
      if (!item) { this.text.value = ''; this.text.placeholder = ''; return; }
      if (!tab.draft) {
        tab.draft = { id: item.id, dirty: false, visit: {} };
        this.text.value = item.value ? item.value.caption : (item.text || '');
      }
      this.text.placeholder = item.text ? `Empty: the source caption is used — “${item.text}”` : 'No source caption';
      if (matchMedia('(pointer: fine)').matches && document.activeElement !== this.text) this.text.focus({ preventScroll: true });
    },
    typed(tab) {
      if (!tab || !tab.draft) return;
      tab.draft.dirty = true;
      clearTimeout(this.timer);
      this.timer = later(() => this.save(tab, false), CAPTION_DEBOUNCE_MS);
    },
    save(tab, force) {
      const item = current(tab);
      const d = tab.draft;
      if (!item || !d || d.id !== item.id || (!force && !d.dirty)) return;
      clearTimeout(this.timer);
      const value = { caption: this.text.value, version: tab.cfg.version };
      d.dirty = false;
      if (sameJSON(item.value, value)) return;
      const merge = tab.history.length && tab.history.at(-1).id === item.id && tab.history.at(-1).visit === d.visit;
      const prev = merge ? tab.history.pop().prev : item.value;
      decide(tab, value);
      tab.history.at(-1).prev = prev;  // one undo step per visit, however many autosaves it took
      tab.history.at(-1).visit = d.visit;
    },
    move(tab, dir, t0) {
      const item = current(tab);
      if (dir > 0) {
        if (!item) return;
        const was = isLabeled(tab, item.value);
        this.save(tab, !was);
        advance(tab, was, t0);
      } else { this.save(tab, false); back(tab, t0); }
    },
    key(tab, k, e) {
      if (k === 'ArrowRight' || k === 'd') this.move(tab, 1, e.timeStamp);
      else if (k === 'ArrowLeft' || k === 'a') this.move(tab, -1, e.timeStamp);
      else return false;
      return true;
    },
    swipe() {},
  };
  // HumanRank: two images side by side (stacked on a phone); the server hands out pairs ahead, the page keeps
  // PAIRS_AHEAD of them decoded, and each decision is one journal entry (undo: an entry naming its request).
  const RANK = {
    pair: tab => (tab.pairs && tab.pairs[0]) || null,
    mount(tab) {
      this.meter = h('div', { class: 'bp-rank-meter', 'aria-live': 'polite' });
      ui.side.replaceChildren(this.meter);
      this.buttons = [
        button('bp-keep bp-pick-a', 'Left is better', '← A', t => RANK.pick(active, 1, t)),
        button('bp-nav bp-tie', "Can't tell", '↓ S', t => RANK.pick(active, 0.5, t)),
        button('bp-keep bp-pick-b', 'Right is better', '→ D', t => RANK.pick(active, 0, t)),
      ];
      [['Left', 'Top'], null, ['Right', 'Bottom']].forEach((words, i) => {  // stacked on a phone
        if (words) this.buttons[i].querySelector('.bp-btn-label').replaceChildren(
          h('span', { class: 'bp-wide', text: words[0] }), h('span', { class: 'bp-narrow', text: words[1] }), ' is better');
      });
      ui.controls.replaceChildren(this.buttons[0], this.buttons[1], button('bp-nav', 'Undo', 'Z', t => undo(active, t)), this.buttons[2]);
      legend([['← A', 'left is better'], ['→ D', 'right is better'], ['↓ S', "can't tell"], ['Z', 'undo'], ['swipe', '← left · → right']]);
    },
    wanted(tab) {
      const out = [];
      for (const p of (tab.pairs || []).slice(0, PAIRS_AHEAD)) out.push(p.a, p.b);
      const last = tab.history.at(-1);
      if (last) out.push(last.pair.a, last.pair.b);  // what an undo brings back
      return out;
    },
    render(tab, t0) {
      const pair = this.pair(tab);
      const frame = ui.frame;
      frame.dataset.state = pair ? 'open' : 'empty';
      if (!pair) {
        const c = tab.counts || { total: 0 };
        const text = c.total < 2 ? `Ranking needs at least two images here (it follows “${tab.cfg.upstream}”); new ones appear without a reload.`
          : 'Loading the next pair…';
        frame.replaceChildren(h('div', { class: 'bp-done' }, h('p', { text })));
        this.refill(tab);
        return;
      }
      const a = pooled(pair.a), b = pooled(pair.b);
      if (!ui.pair) {
        ui.slotA = h('div', { class: 'bp-choice', 'data-side': 'a' });
        ui.slotB = h('div', { class: 'bp-choice', 'data-side': 'b' });
        ui.pair = h('div', { class: 'bp-pair' }, ui.slotA, ui.slotB);
      }
      if (frame.firstChild !== ui.pair) frame.replaceChildren(ui.pair);
      if (ui.slotA.firstChild !== a.img) ui.slotA.replaceChildren(a.img);
      if (b.img === a.img) ui.slotB.replaceChildren();
      else if (ui.slotB.firstChild !== b.img) ui.slotB.replaceChildren(b.img);
      Promise.all([a.ready, b.ready]).then(() => {
        if (t0 == null) return;
        requestAnimationFrame(() => requestAnimationFrame(() => {
          if (this.pair(tab) !== pair || active !== tab) { superseded.count += 1; return; }
          paints.push(performance.now() - t0);
          if (paints.length > 2000) paints.splice(0, 1000);
        }));
      });
    },
    update(tab) {
      const has = !!this.pair(tab);
      for (const b of this.buttons) b.disabled = !has;
      const c = tab.counts;
      if (!c || !this.meter) return;
      const done = c.comparisons + this.unsaved(tab);
      const parts = [`${done} / ${c.target} comparisons`, `${c.kept} of ${c.total} images have ${tab.cfg.target}`];
      parts.push(c.settled == null ? 'settled: too early to say' : `settled ${c.settled}%`);
      this.meter.replaceChildren(...parts.map(t => h('span', { class: 'bp-stat', text: t })));
      if (c.total && c.remaining === 0) this.meter.append(h('span', { class: 'bp-stat kept', text: 'target reached — more comparisons refine the order' }));
    },
    where(tab) {
      const p = this.pair(tab);
      ui.where.textContent = p ? `${p.a.name || p.a.id.slice(0, 8)}  vs  ${p.b.name || p.b.id.slice(0, 8)}` : '';
    },
    unsaved(tab) {
      let n = 0;
      for (const w of outbox.pending) if (w.tab === tab.cfg.key && w.value) n += w.value.undo ? -1 : 1;
      return n;
    },
    pick(tab, result, t0) {
      const pair = this.pair(tab);
      if (!pair) return;
      const rid = enqueue(tab, pair.a.id, { vs: pair.b.id, result }, null);
      tab.history.push({ pair, rid });
      if (tab.history.length > 500) tab.history.splice(0, 100);
      tab.pairs.shift();
      render(tab, t0);
      this.refill(tab);
    },
    undo(tab, t0) {
      const last = tab.history.pop();
      if (!last) { toast('Nothing to undo'); return; }
      enqueue(tab, last.pair.a.id, { undo: last.rid }, null);
      tab.pairs.unshift(last.pair);
      toast('Undone: this pair again');
      render(tab, t0);
    },
    async refill(tab) {
      if (tab.fetchingPairs || !tab.loaded || (tab.pairs || []).length >= PAIRS_LOW_WATER) return;
      tab.fetchingPairs = true;
      try {
        const recent = tab.history.slice(-16).map(x => [x.pair.a.id, x.pair.b.id]);
        const queued = tab.pairs.map(p => [p.a.id, p.b.id]);
        const r = await call('pairs', { tab: tab.cfg.key, want: 12, avoid: [...recent, ...queued] });
        const hadPair = !!this.pair(tab);
        for (const p of r.pairs || []) {
          const prev = tab.pairs.at(-1) || (tab.history.at(-1) || {}).pair;
          if (prev && new Set([prev.a.id, prev.b.id, p.a.id, p.b.id]).size === 2 && (r.counts || {}).total > 2) continue;
          tab.pairs.push(p);
        }
        tab.counts = r.counts;
        if (tab === active) { if (!hadPair && this.pair(tab)) render(tab); else { preload(tab); this.update(tab); renderTabs(); } }
      } catch (e) {
        later(() => this.refill(tab), 2000);
      } finally { tab.fetchingPairs = false; }
    },
    key(tab, k, e) {
      if (k === 'ArrowLeft' || k === 'a') this.pick(tab, 1, e.timeStamp);
      else if (k === 'ArrowRight' || k === 'd') this.pick(tab, 0, e.timeStamp);
      else if (k === 'ArrowDown' || k === 's') this.pick(tab, 0.5, e.timeStamp);
      else return false;
      return true;
    },
    swipe(tab, dir, t0) { this.pick(tab, dir < 0 ? 1 : 0, t0); },
  };
  const KINDS = { filter: FILTER, tag: TAG, caption: CAPTION, rank: RANK };

  // ---- keys, touch ----------------------------------------------------------------------------------------
  function onKey(e) {
    const tab = active;
    if (!tab || !tab.loaded || e.isComposing) return;
    const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const inText = !!(e.target.closest && e.target.closest('input, textarea, select, [contenteditable]'));
    const mod = e.ctrlKey || e.metaKey;
    if (tab.cfg.kind === 'caption' && (e.altKey || mod) && (k === 'ArrowLeft' || k === 'ArrowRight')) {
      e.preventDefault();
      CAPTION.move(tab, k === 'ArrowRight' ? 1 : -1, e.timeStamp);
      return;
    }
    if (tab.cfg.kind === 'caption' && mod && k === 'Enter') { e.preventDefault(); CAPTION.move(tab, 1, e.timeStamp); return; }
    if (inText) { if (k === 'Escape') e.target.blur(); return; }  // typing: the text area owns the keys
    if (e.altKey) return;
    if (k === 'z' && !e.repeat) { e.preventDefault(); undo(tab, e.timeStamp); return; }
    if (mod) return;
    if (k === 'Enter') {
      if (!current(tab)) { e.preventDefault(); continueOn(tab); }
      return;
    }
    const navigation = k === 'ArrowLeft' || k === 'a' || k === 'ArrowRight' || k === 'd';
    if (e.repeat && !navigation) return;  // holding a key must not judge a run of images
    if (KINDS[tab.cfg.kind].key(tab, k, e)) e.preventDefault();
    else if (k === 'ArrowLeft' || k === 'a') { e.preventDefault(); back(tab, e.timeStamp); }
  }
  function bindSwipe() {
    let start = null;
    listen(ui.frame, 'touchstart', e => {
      if (e.touches.length !== 1) { start = null; return; }
      start = { x: e.touches[0].clientX, y: e.touches[0].clientY, t: e.timeStamp };
    }, { passive: true });
    listen(ui.frame, 'touchmove', e => {
      if (!start) return;
      const dx = e.touches[0].clientX - start.x;
      ui.frame.style.setProperty('--swipe', `${dx}px`);
      ui.frame.dataset.swipe = dx > 30 ? 'keep' : dx < -30 ? 'reject' : '';
    }, { passive: true });
    listen(ui.frame, 'touchend', e => {
      ui.frame.style.removeProperty('--swipe');
      ui.frame.dataset.swipe = '';
      if (!start || !active) return;
      const t = e.changedTouches[0];
      const dx = t.clientX - start.x, dy = t.clientY - start.y;
      const s = start;
      start = null;
      if (Math.abs(dx) >= SWIPE_MIN_PX && Math.abs(dy) < Math.abs(dx) * 0.6 && e.timeStamp - s.t < 1000) {
        KINDS[active.cfg.kind].swipe(active, Math.sign(dx), e.timeStamp);
      }
    });
  }

  // ---- loading and polling ----------------------------------------------------------------------------
  function overlayPending(tab, items) {  // what the server sent, with our unsaved decisions on top
    const byId = new Map(items.map(it => [it.id, it]));
    for (const w of outbox.pending) if (w.tab === tab.cfg.key && byId.has(w.id)) byId.get(w.id).value = w.value;
    return items;
  }
  function merge(tab, items, atEnd) {
    overlayPending(tab, items);
    const known = new Set(tab.items.map(it => it.id));
    const fresh = items.filter(it => !known.has(it.id));
    if (atEnd) tab.items.push(...fresh);
    else { tab.items.unshift(...fresh); tab.cursor += fresh.length; tab.start -= fresh.length; }
    return fresh.length;
  }
  async function load(tab) {
    if (tab.loading) return tab.loading;
    tab.loading = (async () => {
      try {
        const r = await call('start', { tab: tab.cfg.key });
        Object.assign(tab, {
          items: overlayPending(tab, r.items), start: r.start, cursor: r.cursor, moreBefore: r.more_before, moreAfter: r.more_after,
          journal: r.journal, counts: serverCounts(tab, r.counts, r.journal), busy: r.busy, loaded: true, note: r.note,
          error: '', draft: null, pairs: r.pairs || [],
        });
      } catch (e) {
        tab.error = 'Could not load: ' + e.message + ' — retrying…';
        later(() => load(tab), 3000);
      } finally { tab.loading = null; }
      render(tab);
    })();
    return tab.loading;
  }
  function restart(tab) { tab.loaded = false; render(tab); return load(tab); }
  async function loadAfter(tab) {
    if (tab.paging || !tab.moreAfter) return;
    tab.paging = true;
    try {
      const last = tab.items.at(-1);
      const r = await call('page', { tab: tab.cfg.key, after: last ? last.id : null });
      const wasDone = !current(tab);
      merge(tab, r.items, true);
      tab.moreAfter = r.more_after;
      if (wasDone || tab.items.length - tab.cursor <= PRELOAD_AHEAD + 1) render(tab);
    } catch (e) {
      if (/gone/.test(e.message)) restart(tab);
    } finally { tab.paging = false; }
  }
  async function loadBefore(tab) {
    const first = tab.items[0];
    if (!first) return;
    try {
      const r = await call('page', { tab: tab.cfg.key, before: first.id });
      merge(tab, r.items, false);
      tab.moreBefore = r.more_before;
    } catch (e) {
      if (/gone/.test(e.message)) await restart(tab);
    }
  }
  function ensurePages(tab) {
    if (tab.moreAfter && tab.items.length - tab.cursor < PAGE_LOW_WATER) loadAfter(tab);
  }
  async function poll(tab) {
    if (!tab.loaded || tab.polling) return;
    tab.polling = true;
    tab.lastPoll = Date.now();
    try {
      const last = tab.items.at(-1);
      const tail = !tab.moreAfter;
      const r = await call('poll', { tab: tab.cfg.key, since: tab.journal, tail, after: last ? last.id : null });
      applyPoll(tab, r, tail);
    } catch (e) {
      /* the next poll tries again; saving has its own indicator */
    } finally { tab.polling = false; }
  }
  function applyPoll(tab, r, tail) {
    if (r.gone) { restart(tab); return; }
    const cur = current(tab);
    let touched = false;
    for (const ch of r.changes || []) {  // labels from other tabs or devices; our unsaved ones win
      if (hasPending(tab.cfg.key, ch.id)) continue;
      const i = indexOf(tab, ch.id);
      if (i >= 0 && !sameJSON(tab.items[i].value, ch.value)) {
        tab.items[i].value = ch.value;
        if (tab.items[i] === cur && !(tab.draft && tab.draft.dirty)) { tab.draft = null; touched = true; }
      }
    }
    tab.journal = r.journal;
    tab.counts = serverCounts(tab, r.counts, r.journal);
    tab.busy = r.busy;
    tab.note = r.note;
    if (tab.cfg.kind === 'rank') {
      if (!tab.pairs.length) RANK.refill(tab);
      if (tab === active) { renderTabs(); RANK.update(tab); }
      return;
    }
    const wasDone = !cur;
    if (tail && r.items && merge(tab, r.items, true)) { tab.moreAfter = r.more_after; touched = touched || wasDone; }
    if (tab !== active) { renderTabs(); return; }
    if (touched) render(tab);
    else { renderTabs(); renderStats(tab); renderWhere(tab); preload(tab); }
  }
  function tick() {
    const now = Date.now();
    for (const tab of tabs) {
      const every = tab === active ? POLL_ACTIVE_MS : POLL_OTHER_MS;
      if (!tab.loaded) { if (tab !== active && !tab.loading && !tab.error) load(tab); continue; }
      if (now - tab.lastPoll >= every) poll(tab);
    }
    if (outbox.pending.length) persist();  // keeps this page's stored outbox fresh (not adopted by others)
    if (++ui.ticks % 5 === 0 && adopt()) renderSave();
    flush();
    later(tick, 1000);
  }

  // ---- tabs, boot ---------------------------------------------------------------------------------------
  function activate(tab) {
    if (active && active !== tab && active.cfg.kind === 'caption') CAPTION.save(active, false);
    active = tab;
    const url = new URL(location.href);
    url.searchParams.set('tab', tab.cfg.key);
    history.replaceState(history.state, '', url);
    render(tab);
    if (!tab.loaded) load(tab);
  }
  function boot() {
    if (!tabs.length) {
      root.replaceChildren(h('div', { class: 'bp-msg' },
        h('h2', { text: 'No human stages' }),
        h('p', { text: 'None of the loaded workflows has a HumanFilter, HumanTag, HumanCaption or HumanRank stage.' })));
      return;
    }
    listen(document, 'keydown', onKey);
    // A caption typed less than CAPTION_DEBOUNCE_MS ago is not in the outbox yet: put it there first.
    const saveTyping = () => { if (active && active.cfg.kind === 'caption') CAPTION.save(active, false); };
    listen(window, 'beforeunload', e => {
      saveTyping();
      persist(true);
      if (outbox.pending.length) { e.preventDefault(); e.returnValue = ''; }  // stored too, but say so
    });
    listen(window, 'pagehide', () => persist(true));
    listen(document, 'visibilitychange', () => { if (document.visibilityState === 'hidden') { saveTyping(); flush(); } });
    bindSwipe();
    ui.ticks = 0;
    const adopted = adopt();
    renderSave();
    renderConnection();
    if (adopted) toast(`${adopted} label(s) from before the reload: sending them now`);
    const wanted = new URLSearchParams(location.search).get('tab');
    activate(tabs.find(t => t.cfg.key === wanted) || tabs[0]);
    tick();
  }

  window.__bp = {  // for tests and the benchmark: state to read, never to drive the app
    outbox, paints, superseded, tabs,
    preloaded: () => {  // upcoming images already downloaded and decoded
      if (!active) return 0;
      const ready = i => (pool.get(poolKey(active.items[i])) || {}).state === 'done';
      if (active.cfg.kind === 'rank') return RANK.wanted(active).slice(2).filter(it => (pool.get(poolKey(it)) || {}).state === 'done').length;
      return [...upcoming(active, PRELOAD_AHEAD)].filter(ready).length;
    },
    state: () => {
      const tab = active;
      const item = tab && current(tab);
      return {
        tab: tab && tab.cfg.key, cursor: tab && tab.start + tab.cursor, id: item && item.id,
        value: item && item.value, counts: tab && tab.counts, unsaved: outbox.pending.length,
        acked: outbox.ackedTotal, failures: outbox.failures, pool: pool.size,
        connection: conn.away ? 'away' : 'ok',
        pair: tab && tab.pairs && tab.pairs[0] ? [tab.pairs[0].a.id, tab.pairs[0].b.id] : null,
        pairsAhead: tab && tab.pairs ? tab.pairs.length : 0,
      };
    },
    destroy: () => {
      listeners.forEach(off => off());
      timers.forEach(t => clearTimeout(t));
    },
  };
  boot();
})();
