// The audit view's page: reads the local `sshca audit ui` server's /api (which
// signs each request to sshca with the auditor's own AWS credentials) and
// shows it. Everything from the record is written with textContent, never
// as markup.
'use strict';
(() => {
  const token = location.hash.slice(1);
  const $ = (id) => document.getElementById(id);
  const loaded = new Set();
  const done = (part) => {
    loaded.add(part);
    document.body.dataset.loaded = [...loaded].sort().join(' ');
  };

  async function api(path, params) {
    const query = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== ''));
    const res = await fetch(`/api/${path}${query.toString() ? `?${query}` : ''}`, { headers: { 'x-sshca-ui-token': token } });
    const body = await res.json();
    if (!res.ok) throw new Error(`${body.message || res.statusText} [${body.code || res.status}]`);
    return body;
  }
  const showError = (err) => {
    $('error').textContent = String(err.message || err);
  };

  function cell(row, text, className) {
    const td = document.createElement('td');
    td.textContent = text === undefined || text === null ? '' : String(text);
    if (className) td.className = className;
    row.appendChild(td);
  }
  const fill = (table, rows) => {
    const body = table.querySelector('tbody');
    body.replaceChildren(...rows);
  };
  const duration = (seconds) => {
    let rest = Math.max(0, Math.floor(seconds));
    let out = '';
    for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
      const n = Math.floor(rest / size);
      if (n > 0) out += `${n}${unit}`;
      rest -= n * size;
    }
    return out || '0s';
  };
  const callerNote = (id, match) => {
    $(id).textContent = !match || match.by !== 'name' ? '' : match.matched.length ? `caller ${match.query} matched: ${match.matched.join(', ')}` : `caller ${match.query}: no caller on the record has that name`;
  };
  const formValues = (form) => Object.fromEntries(new FormData(form).entries());

  async function loadActive() {
    const answer = await api('active', formValues($('active-filter')));
    callerNote('active-caller', answer.caller);
    fill($('active'), answer.certificates.map((c) => {
      const tr = document.createElement('tr');
      tr.dataset.serial = c.serial;
      cell(tr, c.serial, 'mono');
      cell(tr, c.certificateType);
      cell(tr, c.principals.join(', '));
      cell(tr, c.callerArn, 'mono');
      cell(tr, c.sourceIp, 'mono');
      cell(tr, c.issuedAt);
      cell(tr, `${new Date(c.validBefore * 1000).toISOString()} (in ${duration(c.validBefore - Date.now() / 1000)})`);
      cell(tr, c.policyRule);
      cell(tr, c.reason);
      return tr;
    }));
    done('active');
  }

  function what(r) {
    const d = r.data;
    switch (r.kind) {
      case 'issued': return `serial ${d.serial} principals ${d.principals.join(',')}`;
      case 'revoked': return `${d.revokedBy} ${d.revokedBy === 'publicKey' ? d.publicKeyFingerprint : d.revokedBy === 'keyId' ? d.keyId : d.serial}: ${d.reason}`;
      case 'withdrawn': return `revocation #${d.revocationSeq}: ${d.reason}`;
      case 'refused-summary': return `${d.total} anonymous refusals: ${d.counts.map((c) => `${c.code} ${c.network} ×${c.count}`).join(', ')}`;
      default: return d.code;
    }
  }

  let before;
  async function loadRecords(more) {
    const params = { ...formValues($('record-filter')), limit: '100', ...(more && before ? { before: String(before) } : {}) };
    const page = await api('records', params);
    callerNote('records-caller', page.caller);
    const rows = page.records.map((r) => {
      const d = r.data;
      const tr = document.createElement('tr');
      tr.dataset.kind = r.kind;
      if (d.serial) tr.dataset.serial = d.serial;
      cell(tr, r.seq);
      cell(tr, r.at);
      cell(tr, r.kind);
      cell(tr, d.callerArn || (r.kind === 'refused-summary' ? '(anonymous)' : ''), 'mono');
      cell(tr, d.sourceIp, 'mono');
      cell(tr, what(r));
      cell(tr, r.kind === 'issued' ? duration(d.validBefore - Math.floor(Date.parse(r.at) / 1000)) : '');
      cell(tr, d.policyRule);
      cell(tr, d.reason);
      return tr;
    });
    if (more) $('records').querySelector('tbody').append(...rows);
    else fill($('records'), rows);
    before = page.nextBefore;
    $('older').hidden = page.nextBefore === undefined;
    done('records');
  }

  let chart;
  async function loadChart() {
    const span = $('span').value === '7d' ? 7 * 86400 : 86400;
    const until = Math.ceil(Date.now() / 3600_000) * 3600;
    const since = until - span;
    const answer = await api('stats', { since: new Date(since * 1000).toISOString(), until: new Date(until * 1000).toISOString() });
    const byHour = new Map(answer.buckets.map((b) => [Date.parse(b.hour) / 1000, b]));
    const hours = [];
    for (let h = since; h < until; h += 3600) hours.push(h);
    const series = (key) => hours.map((h) => (byHour.get(h) ? byHour.get(h)[key] : 0));
    const data = [hours, series('issued'), series('refused'), series('revoked')];
    const box = $('chart');
    if (chart) chart.destroy();
    chart = new uPlot({
      width: box.clientWidth,
      height: box.clientHeight,
      scales: { x: { time: true } },
      series: [
        {},
        { label: 'issued', stroke: '#2166ac', fill: 'rgba(33,102,172,0.35)', width: 2 },
        { label: 'refused', stroke: '#d6312b', fill: 'rgba(214,49,43,0.35)', width: 2 },
        { label: 'revoked', stroke: '#7b3294', width: 2 },
      ],
      legend: { show: false },
    }, data, box);
    done('chart');
  }

  async function loadChain(refresh) {
    $('verify').textContent = 'verifying…';
    $('verify').className = '';
    const v = await api('verify', refresh ? { refresh: '1' } : {});
    if (v.ok) {
      $('verify').className = 'ok';
      const a = v.anchors;
      $('verify').textContent = `verified ${v.count} records; head signed at ${v.headAt}` + (a ? (a.newest ? `; ${a.checked} anchor(s) checked, newest record #${a.newest.seq} at ${a.newest.at}` : '; no anchors yet') : '; this server anchors its chain nowhere');
    } else {
      $('verify').className = 'bad';
      $('verify').textContent = `does not verify: record ${v.failure.seq}: ${v.failure.message} [AUDIT_${v.failure.reason.toUpperCase().replace('-', '_')}]`;
    }
    const anchors = await api('anchors');
    $('anchor-location').textContent = anchors.location ? `anchors: ${anchors.location}` : 'anchors: none configured';
    $('anchors').replaceChildren(...anchors.anchors.map((a) => {
      const li = document.createElement('li');
      li.textContent = `record #${a.seq} at ${a.at} (${a.hash.slice(0, 16)}…)`;
      return li;
    }));
    done('verify');
  }

  const guard = (work) => (...args) => work(...args).catch(showError);
  $('active-filter').addEventListener('submit', (e) => { e.preventDefault(); guard(loadActive)(); });
  $('record-filter').addEventListener('submit', (e) => { e.preventDefault(); guard(loadRecords)(false); });
  $('older').addEventListener('click', () => guard(loadRecords)(true));
  $('reverify').addEventListener('click', () => guard(loadChain)(true));
  $('span').addEventListener('change', () => guard(loadChart)());
  guard(async () => {
    const info = await api('info');
    $('server').textContent = info.server;
  })();
  guard(loadChart)();
  guard(loadActive)();
  guard(loadRecords)(false);
  guard(loadChain)(false);
})();
