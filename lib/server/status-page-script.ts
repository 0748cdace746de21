/**
 * The live page's only script: polls /status once a second and writes the counters into the rows
 * the server rendered (less often when /status is slow to fetch; matched by `data-sp` / `data-ep`, cells by `data-f`). Only textContent and
 * class names are written, never markup, so nothing from the API can become code. When the set of
 * service ports, endpoints or errors shown has changed, it reloads the page so that the server
 * renders the new rows. Without JavaScript the page is the static table of the moment it was served.
 * The Content-Security-Policy allows exactly this text (by its hash), and no other script.
 */
export const STATUS_PAGE_SCRIPT = `
(function () {
  'use strict';
  var body = document.body;
  var live = document.getElementById('live');
  var total = Number(body.getAttribute('data-total'));
  var polls = 0;
  function sig(sp) {
    return sp.servicePort + '|' + (sp.error || '') + '|' + sp.endpoints.map(function (e) { return e.endpoint + ':' + e.inRotation; }).join(',');
  }
  function set(row, field, value) {
    var cell = row.querySelector('[data-f="' + field + '"]');
    if (cell === null) return;
    var text = String(value);
    if (cell.textContent !== text) cell.textContent = text;
    if (field === 'dialFailures') cell.classList.toggle('bad', value > 0);
    if (field === 'active') cell.classList.toggle('busy', value > 0);
  }
  function apply(doc) {
    if (doc.servicePorts.length !== total) return false;
    var byName = new Map();
    doc.servicePorts.forEach(function (sp) { byName.set(sp.servicePort + '\\n' + sp.protocol, sp); });
    var rows = document.querySelectorAll('tr[data-sp]');
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var sp = byName.get(row.getAttribute('data-sp') + '\\n' + row.getAttribute('data-proto'));
      if (sp === undefined) return false;
      var ep = row.getAttribute('data-ep');
      if (ep === null) {
        if (row.getAttribute('data-sig') !== sig(sp)) return false;
        var s = sp.stats || { active: 0, total: 0, dialFailures: 0, bytesIn: 0, bytesOut: 0, noEndpointRejections: 0 };
        ['active', 'total', 'dialFailures', 'bytesIn', 'bytesOut', 'noEndpointRejections'].forEach(function (f) { set(row, f, s[f]); });
      } else {
        var e = sp.endpoints.find(function (x) { return x.endpoint === ep; });
        if (e === undefined) return false;
        ['active', 'total', 'dialFailures'].forEach(function (f) { set(row, f, e[f]); });
      }
    }
    var h = document.getElementById('healthy');
    if (h !== null) {
      h.textContent = doc.healthy ? 'healthy' : 'unhealthy: ' + doc.reasons.join('; ');
      h.className = doc.healthy ? 'ok' : 'down';
    }
    return true;
  }
  function poll() {
    var started = Date.now();
    fetch('/status', { cache: 'no-store' })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (doc) {
        if (!apply(doc)) { location.reload(); return; }
        polls++;
        body.setAttribute('data-polls', String(polls));
        live.textContent = 'live, updated ' + new Date(doc.currentTime).toLocaleTimeString();
        live.className = 'ok';
        // A huge /status (thousands of ports) is polled less often than once a second.
        setTimeout(poll, Math.max(1000, 4 * (Date.now() - started)));
      })
      .catch(function (err) {
        live.textContent = 'not updating (' + err.message + '), retrying';
        live.className = 'down';
        setTimeout(poll, 5000);
      });
  }
  poll();
})();
`;
