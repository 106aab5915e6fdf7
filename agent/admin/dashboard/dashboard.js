// The dashboard page (plain browser script, served by the agent): one EventSource on /dashboard/events, a frame a
// second. The header says how the agent is; each service gets a card with its rate, success, latency, a chart of
// the last two minutes, and its endpoints' shares of the requests over the last ten seconds against the even share.
(() => {
  /** Frames the shares and the spread are computed over: a second is too noisy to judge balancing by. */
  const SHARE_WINDOW = 10;
  /** Frames the charts keep. */
  const HISTORY = 120;
  const cards = new Map();
  const byId = (id) => document.getElementById(id);

  const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const setText = (element, value) => {
    if (element.textContent !== value) element.textContent = value;
  };
  const number = (value, digits) => (value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits));
  const percent = (value) => (value === null || value === undefined ? '—' : `${(value * 100).toFixed(1)}%`);
  const mebibytes = (bytes) => `${(bytes / 1048576).toFixed(0)} MiB`;
  const duration = (ms) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`);
  /** gRPC status names by code (grpc/doc/statuscodes.md). */
  const STATUS_NAMES = [
    'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
    'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
    'UNAUTHENTICATED',
  ];
  /** The order states are counted in, worst last. */
  const ENDPOINT_STATES = ['ready', 'backing off', 'ejected', 'draining', 'terminating', 'not ready'];

  function agentState(readiness) {
    if (readiness?.ready === true) return { state: 'ready', reason: '' };
    if (readiness?.phase === 'draining') return { state: 'draining', reason: 'draining: no new work comes to this agent' };
    return { state: 'not ready', reason: readiness?.reason || 'not ready' };
  }

  /** "ready · 3 pods, 12 destinations · reconcile 4 s ago"; "off" in explicit mode. */
  function describeInterception(view) {
    if (!view) return 'off';
    let pods = 0;
    let destinations = 0;
    for (const [name, members] of Object.entries(view.sets)) {
      if (name.includes('-pods-')) pods += members;
      else destinations += members;
    }
    const parts = [view.reason ? `${view.state} (${view.reason})` : view.state, `${pods} pods, ${destinations} destinations`];
    if (view.lastPass) parts.push(`${view.lastPass.kind} ${Math.round(view.lastPass.agoMs / 1000)} s ago`);
    return parts.join(' · ');
  }

  function renderHeader(frame) {
    const { state, reason } = agentState(frame.agent.readiness);
    const health = byId('health');
    health.dataset.state = state;
    setText(health, state);
    const reasonLine = byId('reason');
    reasonLine.hidden = reason === '';
    setText(reasonLine, reason);
    setText(byId('node'), frame.agent.node ? `on ${frame.agent.node}` : '');
    setText(byId('version'), frame.agent.version);
    setText(byId('rss'), mebibytes(frame.agent.rssBytes));
    setText(byId('loop'), `${number(frame.agent.eventLoopDelayMs, 1)} ms`);
    setText(byId('discovery'), frame.agent.readiness?.discovery?.state || '—');
    const change = frame.agent.changeToPicker;
    setText(byId('change-to-picker'), change ? `${duration(change.ms)} (${duration(change.agoMs)} ago)` : '—');
    setText(byId('interception'), describeInterception(frame.agent.interception));
    setText(byId('updated'), new Date(frame.atMs).toLocaleTimeString());
  }

  function newCard(service) {
    const element = document.createElement('section');
    element.className = 'service';
    element.dataset.service = service.key;
    element.innerHTML =
      `<h2>${escapeHtml(service.namespace)}/${escapeHtml(service.name)}:${escapeHtml(service.port)} <small></small></h2>` +
      '<div class="stats"></div><div class="statuses"></div><div class="chart"></div>' +
      '<table class="endpoints"><thead><tr><th>endpoint</th><th>state</th><th>share of requests, last 10 s (line: even share)</th><th>share</th>' +
      '<th>requests/s</th><th>in flight</th><th>latency</th></tr></thead><tbody></tbody></table>';
    const chartElement = element.querySelector('.chart');
    const card = { element, recent: [], times: [], rates: [], p99s: [], chart: null, chartElement };
    byId('services').append(element);
    if (typeof window.uPlot === 'function') {
      card.chart = new window.uPlot(
        {
          width: Math.max(320, chartElement.clientWidth || 600),
          height: 140,
          scales: { x: { time: true }, rps: {}, ms: {} },
          axes: [{}, { scale: 'rps', label: 'req/s' }, { scale: 'ms', side: 1, label: 'p99 ms', grid: { show: false } }],
          series: [{}, { label: 'requests/s', scale: 'rps', stroke: '#0969da' }, { label: 'p99 ms', scale: 'ms', stroke: '#9a6700' }],
        },
        [[], [], []],
        chartElement,
      );
    }
    return card;
  }

  /** Each endpoint's share of the service's requests over the window, and the window's total. */
  function windowShares(card) {
    const totals = new Map();
    let all = 0;
    for (const frame of card.recent) {
      for (const [address, requests] of frame) {
        totals.set(address, (totals.get(address) || 0) + requests);
        all += requests;
      }
    }
    return { totals, all };
  }

  function renderService(card, service, frame) {
    card.recent.push(new Map(service.endpoints.map((endpoint) => [endpoint.address, endpoint.requests])));
    if (card.recent.length > SHARE_WINDOW) card.recent.shift();
    card.times.push(frame.atMs / 1000);
    card.rates.push(service.requestsPerSecond);
    card.p99s.push(service.p99Ms);
    if (card.times.length > HISTORY) {
      card.times.shift();
      card.rates.shift();
      card.p99s.shift();
    }
    if (card.chart) card.chart.setData([card.times, card.rates, card.p99s]);

    const { totals, all } = windowShares(card);
    const share = (address) => (all > 0 ? (totals.get(address) || 0) / all : null);
    const ready = service.endpoints.filter((endpoint) => endpoint.state === 'ready');
    const readyShares = ready.map((endpoint) => share(endpoint.address) || 0);
    const idle = all > 0 ? readyShares.filter((value) => value === 0).length : 0;
    const busy = readyShares.filter((value) => value > 0);
    let spread = '—';
    if (idle > 0) spread = `∞ (${idle} ready endpoint${idle === 1 ? '' : 's'} got nothing)`;
    else if (busy.length >= 2) spread = `${(Math.max(...busy) / Math.min(...busy)).toFixed(2)}×`;

    setText(card.element.querySelector('h2 small'), `balancer ${service.balancer}`);
    const counts = service.endpointsByState;
    const stats = [
      [number(service.requestsPerSecond, 0), 'requests/s'],
      [percent(service.successRate), 'success'],
      [`${number(service.p50Ms, 1)} ms`, 'p50'],
      [`${number(service.p99Ms, 1)} ms`, 'p99'],
      [spread, 'spread (largest ÷ smallest share)'],
      [ENDPOINT_STATES.filter((state) => counts[state] > 0).map((state) => `${counts[state]} ${state}`).join(' · ') || 'none', 'endpoints'],
    ];
    card.element.querySelector('div.stats').innerHTML = stats.map(([value, label]) => `<div><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`).join('');
    // Every status seen in the last second, OK first: what the success rate is made of.
    const statuses = Object.entries(service.byStatus).sort(([a], [b]) => Number(a) - Number(b));
    const total = statuses.reduce((sum, [, count]) => sum + count, 0);
    card.element.querySelector('div.statuses').innerHTML =
      total === 0
        ? 'no requests in the last second'
        : statuses.map(([code, count]) => `<span data-code="${escapeHtml(code)}">${escapeHtml(STATUS_NAMES[Number(code)] || `status ${code}`)} ${escapeHtml(percent(count / total))} (${count})</span>`).join(' · ');
    const even = service.evenShare;
    // (uPlot's legend is a table too: select ours by its class.)
    card.element.querySelector('table.endpoints tbody').innerHTML = service.endpoints
      .map((endpoint) => {
        const value = share(endpoint.address);
        const bar = `<div class="bar"><i style="width:${((value || 0) * 100).toFixed(1)}%"></i>${even === null ? '' : `<b style="left:${(even * 100).toFixed(1)}%"></b>`}</div>`;
        return (
          `<tr data-endpoint="${escapeHtml(endpoint.address)}" data-state="${escapeHtml(endpoint.state)}" data-share="${value === null ? '' : value.toFixed(4)}">` +
          `<td>${escapeHtml(endpoint.address)}</td><td class="state" data-state="${escapeHtml(endpoint.state)}">${escapeHtml(endpoint.state)}</td>` +
          `<td>${bar}</td><td>${percent(value)}</td><td>${number(endpoint.requests / frame.intervalS, 0)}</td>` +
          `<td>${endpoint.inFlight}</td><td>${number(endpoint.latencyMs, 1)} ms</td></tr>`
        );
      })
      .join('');
  }

  function renderPods(pods) {
    byId('pods').innerHTML =
      pods.length === 0
        ? '<tr><td colspan="3" class="empty">none</td></tr>'
        : pods.map((pod) => `<tr data-pod="${escapeHtml(pod.namespace)}/${escapeHtml(pod.name)}"><td>${escapeHtml(pod.namespace)}</td><td>${escapeHtml(pod.name)}</td><td>${pod.ips.map(escapeHtml).join(', ')}</td></tr>`).join('');
  }

  function renderEvents(events) {
    byId('events').innerHTML = events
      .map((event) => {
        const time = event.time === '' ? '' : new Date(event.time).toLocaleTimeString();
        const what = event.code === null ? event.msg : `${event.code}: ${event.msg}`;
        return `<tr data-level="${escapeHtml(event.level)}"><td>${escapeHtml(time)}</td><td>${escapeHtml(event.level)}</td><td>${escapeHtml(event.component || '')}</td><td>${escapeHtml(what)}</td></tr>`;
      })
      .join('');
  }

  let framesShown = 0;

  function render(frame) {
    renderHeader(frame);
    renderPods(frame.pods);
    renderEvents(frame.events);
    // How many frames this page has drawn: for people and tests that wait for the next one.
    framesShown++;
    document.body.dataset.frames = String(framesShown);
    const seen = new Set();
    for (const service of frame.services) {
      seen.add(service.key);
      let card = cards.get(service.key);
      if (card === undefined) {
        card = newCard(service);
        cards.set(service.key, card);
      }
      renderService(card, service, frame);
    }
    for (const [key, card] of cards) {
      if (seen.has(key)) continue;
      card.element.remove();
      cards.delete(key);
    }
    const empty = document.querySelector('#services > .empty');
    if (frame.services.length === 0 && empty === null) {
      byId('services').insertAdjacentHTML('afterbegin', '<p class="empty">No gRPC service is known to this agent yet.</p>');
    } else if (frame.services.length > 0 && empty !== null) {
      empty.remove();
    } else if (empty !== null) {
      setText(empty, 'No gRPC service is known to this agent yet.');
    }
  }

  const events = new EventSource('/dashboard/events');
  events.onopen = () => {
    byId('connection').hidden = true;
  };
  events.onerror = () => {
    byId('connection').hidden = false;
  };
  events.onmessage = (event) => render(JSON.parse(event.data));
})();
