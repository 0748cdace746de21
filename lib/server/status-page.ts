import { createHash } from 'node:crypto';
import { escapeHtml as h } from './escape-html.js';
import { rulesExcerpt } from './rules-excerpt.js';
import type { EndpointStatusJson, ServicePortStatusJson, StatusDocument } from './status-document.js';
import { STATUS_PAGE_SCRIPT } from './status-page-script.js';
import { STATUS_PAGE_STYLE } from './status-page-style.js';

/**
 * Service ports shown per page. The page is built in one pass over /status's document (string
 * pieces joined once), so even this many rows render in milliseconds; beyond it the table is split
 * into pages (`?page=2`) so that neither the server nor the browser handles a huge document.
 */
export const SERVICE_PORTS_PER_PAGE = 500;
/** Endpoint rows shown under one service port; the rest are counted in one row ("and N more"). */
export const ENDPOINTS_PER_PORT = 100;

export interface StatusPageOptions {
  /** `?service=`: the service port (as in /status) whose packet path is shown. */
  readonly service?: string | undefined;
  /** That service port's rules as the backend renders them (the --dry-run text), if any. */
  readonly rules?: string | undefined;
  /** `?page=`, from 1. */
  readonly page?: number | undefined;
}

export interface StatusPage {
  /** 404 when `service` names no service port; the page is still the whole table. */
  readonly status: number;
  readonly html: string;
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/**
 * Only the page's own inline script and style may run (by hash): a name that escaped escaping
 * still could not execute. The script may fetch same-origin /status and nothing else.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(STATUS_PAGE_SCRIPT)}`,
  `style-src ${sha256(STATUS_PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Link to the packet path of one service port. */
export function serviceLink(servicePort: string): string {
  return `/?service=${encodeURIComponent(servicePort)}`;
}

/** The state a service port's row is coloured by. */
function stateOf(sp: ServicePortStatusJson): 'up' | 'noep' | 'down' {
  if (sp.error !== null) return 'down';
  return sp.endpoints.some((e) => e.inRotation) ? 'up' : 'noep';
}

/** What the live script compares to decide that the rows shown are no longer the right ones. */
function signature(sp: ServicePortStatusJson): string {
  return `${sp.servicePort}|${sp.error ?? ''}|${sp.endpoints.map((e) => `${e.endpoint}:${e.inRotation}`).join(',')}`;
}

function affinityText(sp: ServicePortStatusJson): string {
  return sp.affinity.type === 'ClientIP' ? `ClientIP ${sp.affinity.timeoutSeconds}s` : sp.affinity.type;
}

function num(field: string, value: number, extraClass = ''): string {
  const cls = ['n', extraClass].filter(Boolean).join(' ');
  return `<td class="${cls}" data-f="${field}">${value}</td>`;
}

function servicePortRow(sp: ServicePortStatusJson, selected: boolean, out: string[]): void {
  const s = sp.stats;
  const state = stateOf(sp);
  const proxyPort = sp.proxyPort > 0 ? String(sp.proxyPort) : sp.listening.length > 0 ? 'portal' : '–';
  const inRotation = sp.endpoints.filter((e) => e.inRotation).length;
  out.push(
    `<tr class="sp ${state}${selected ? ' sel' : ''}" data-sp="${h(sp.servicePort)}" data-proto="${h(sp.protocol)}" data-sig="${h(signature(sp))}">`,
    `<td><a href="${h(serviceLink(sp.servicePort))}">${h(sp.servicePort)}</a></td>`,
    `<td>${h(sp.protocol)}</td>`,
    `<td>${sp.portals.map(h).join('<br>')}${sp.nodePort > 0 ? `<br><span class="muted">node port ${sp.nodePort}</span>` : ''}</td>`,
    `<td class="n">${h(proxyPort)}</td>`,
    `<td>${h(sp.scheduler)}</td>`,
    `<td>${h(affinityText(sp))}</td>`,
    `<td>${state === 'down' ? `<span class="down">${h(sp.error ?? '')}</span>` : state === 'noep' ? '<span class="warn">no endpoints</span>' : `${inRotation} endpoint${inRotation === 1 ? '' : 's'}`}</td>`,
    num('active', s?.active ?? 0, (s?.active ?? 0) > 0 ? 'busy' : ''),
    num('total', s?.total ?? 0),
    num('dialFailures', s?.dialFailures ?? 0, (s?.dialFailures ?? 0) > 0 ? 'bad' : ''),
    num('noEndpointRejections', s?.noEndpointRejections ?? 0),
    num('bytesIn', s?.bytesIn ?? 0),
    num('bytesOut', s?.bytesOut ?? 0),
    '</tr>',
  );
  const shown = sp.endpoints.slice(0, ENDPOINTS_PER_PORT);
  for (const e of shown) endpointRow(sp, e, out);
  if (sp.endpoints.length > shown.length) out.push(`<tr class="ep"><td colspan="13" class="muted">and ${sp.endpoints.length - shown.length} more endpoints (see /status)</td></tr>`);
}

function endpointRow(sp: ServicePortStatusJson, e: EndpointStatusJson, out: string[]): void {
  out.push(
    `<tr class="ep${e.inRotation ? '' : ' drain'}" data-sp="${h(sp.servicePort)}" data-proto="${h(sp.protocol)}" data-ep="${h(e.endpoint)}">`,
    `<td>${h(e.endpoint)}</td><td></td><td></td><td></td><td></td><td></td>`,
    `<td>${e.inRotation ? '<span class="ok">in rotation</span>' : 'draining (left the rotation)'}</td>`,
    num('active', e.active, e.active > 0 ? 'busy' : ''),
    num('total', e.total),
    num('dialFailures', e.dialFailures, e.dialFailures > 0 ? 'bad' : ''),
    '<td></td><td></td><td></td></tr>',
  );
}

function rulesBlock(rules: string, servicePort: string): string {
  const spn = servicePort.replace(/ \((internal|external)\)$/, '');
  const excerpt = rulesExcerpt(rules, spn).map((k) => (k.mine ? `<mark>${h(k.line)}</mark>` : h(k.line)));
  return (
    `<pre class="rules">${excerpt.length > 0 ? excerpt.join('\n') : h(rules)}</pre>` +
    `<details><summary>The whole rule set the backend renders for this port alone (as --dry-run prints it)</summary><pre class="rules">${h(rules)}</pre></details>`
  );
}

function pathSection(doc: StatusDocument, sp: ServicePortStatusJson, rules: string | undefined, out: string[]): void {
  const none = doc.redirectMode.startsWith('none');
  const inRotation = sp.endpoints.filter((e) => e.inRotation);
  const portals = sp.portals.map((p) => `<code>${h(p)}</code>`).join(', ');
  out.push(`<section id="path"><h2>The path of a packet to ${h(sp.servicePort)} (${h(sp.protocol)}), redirect mode ${h(doc.redirectMode)}</h2><ol class="path">`);
  out.push(`<li><b>Client</b> sends to a portal: ${portals || '<span class="muted">none</span>'}${sp.nodePort > 0 ? `, or to node port <code>${sp.nodePort}</code> on this node` : ''}.</li>`);
  if (none) {
    out.push(
      `<li><b>No rule</b>: in this mode the proxy listens on the portal itself (${sp.listening.map((a) => `<code>${h(a)}</code>`).join(', ') || '<span class="down">not listening</span>'}), so the packet reaches it unchanged.</li>`,
    );
  } else {
    out.push(
      rules === undefined
        ? `<li><b>Rule</b>: none installed for this port${sp.error !== null ? `: <span class="down">${h(sp.error)}</span>` : ' (its listener is not open yet)'}.</li>`
        : `<li><b>Rule</b>: the ${h(doc.redirectMode)} rules below (marked lines) capture the portal in the kernel and rewrite its destination to the proxy port.</li>`,
    );
    out.push(
      `<li><b>Proxy port</b> <code>${sp.proxyPort || '–'}</code>: this process accepts the connection (listening on ${sp.listening.map((a) => `<code>${h(a)}</code>`).join(', ') || '<span class="down">nothing</span>'}).</li>`,
    );
  }
  out.push(
    `<li><b>Scheduler</b> <code>${h(sp.scheduler)}</code>, session affinity <code>${h(affinityText(sp))}</code>: picks one endpoint of ${inRotation.length} in rotation for each new ${sp.protocol === 'UDP' ? 'session' : 'connection'}.</li>`,
  );
  if (inRotation.length === 0) {
    out.push(`<li><b>Endpoint</b>: <span class="warn">none</span>; ${none ? 'no listener is open, so the client is refused' : 'the kernel refuses new connections (reject rule)'}.</li>`);
  } else {
    const list = inRotation
      .slice(0, ENDPOINTS_PER_PORT)
      .map((e) => `<code>${h(e.endpoint)}</code> (${e.active} active, ${e.total} total)`)
      .join(', ');
    out.push(`<li><b>Endpoint</b>: the proxy dials ${list}${inRotation.length > ENDPOINTS_PER_PORT ? ', ...' : ''} and copies bytes both ways.</li>`);
  }
  out.push('</ol>');
  if (rules !== undefined) out.push(rulesBlock(rules, sp.servicePort));
  out.push('</section>');
}

/** The live page at `/`: server-rendered, complete without JavaScript; the script only refreshes numbers. */
export function statusPage(doc: StatusDocument, options: StatusPageOptions = {}): StatusPage {
  const all = doc.servicePorts;
  const pages = Math.max(1, Math.ceil(all.length / SERVICE_PORTS_PER_PAGE));
  const page = Math.min(pages, Math.max(1, Math.floor(options.page ?? 1) || 1));
  const shown = all.slice((page - 1) * SERVICE_PORTS_PER_PAGE, page * SERVICE_PORTS_PER_PAGE);
  const selected = options.service === undefined ? undefined : all.find((sp) => sp.servicePort === options.service);
  const out: string[] = [];
  out.push(
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>kube-userspace-proxy${selected ? ` · ${h(selected.servicePort)}` : ''}</title>`,
    `<style>${STATUS_PAGE_STYLE}</style></head>`,
    `<body data-total="${all.length}">`,
    '<header><h1>kube-userspace-proxy</h1>',
    `<p>Redirect mode <b>${h(doc.redirectMode)}</b> · <span id="healthy" class="${doc.healthy ? 'ok' : 'down'}">${doc.healthy ? 'healthy' : `unhealthy: ${h(doc.reasons.join('; '))}`}</span>${doc.draining ? ' · <span class="warn">draining</span>' : ''}`,
    ` · ${doc.counts.services} services, ${doc.counts.servicePorts} service ports, ${doc.counts.endpoints} endpoints`,
    ` · last sync ${h(doc.lastUpdated ?? 'never')}</p>`,
  );
  if (doc.source !== null) {
    out.push(
      `<p>Kubernetes API: ${doc.source.connected ? '<span class="ok">connected</span>' : '<span class="down">disconnected</span>'}${doc.source.lastError ? ` · last error: ${h(doc.source.lastError)}` : ''}</p>`,
    );
  }
  out.push(
    `<p><span id="live" class="muted">static: counters as of ${h(doc.currentTime)} (reload, or turn on JavaScript, to update)</span> · <a href="/status">/status</a> · <a href="/metrics">/metrics</a></p>`,
    '<p class="legend"><span class="up">serving</span><span class="noep">no endpoints</span><span class="down">not open</span></p></header>',
  );
  if (options.service !== undefined && selected === undefined) out.push(`<p class="down">No service port ${h(options.service)} here.</p>`);
  if (selected !== undefined) pathSection(doc, selected, options.rules, out);
  if (all.length === 0) {
    out.push('<p class="muted">No service ports: no Service with a cluster IP (or manifest) is being proxied yet.</p>');
  } else {
    out.push(
      '<main><table><thead><tr><th>Service port</th><th>Proto</th><th>Portals</th><th class="n">Proxy port</th><th>Scheduler</th><th>Affinity</th><th>Endpoints / state</th>',
      '<th class="n">Active</th><th class="n">Total</th><th class="n">Failures</th><th class="n">Rejected</th><th class="n">Bytes in</th><th class="n">Bytes out</th></tr></thead><tbody>',
    );
    for (const sp of shown) servicePortRow(sp, sp === selected, out);
    out.push('</tbody></table></main>');
    if (pages > 1) {
      const links: string[] = [];
      for (let p = 1; p <= pages; p++) links.push(p === page ? `<b>${p}</b>` : `<a href="/?page=${p}">${p}</a>`);
      out.push(`<nav class="pages">Service ports ${(page - 1) * SERVICE_PORTS_PER_PAGE + 1}–${(page - 1) * SERVICE_PORTS_PER_PAGE + shown.length} of ${all.length}: ${links.join('')}</nav>`);
    }
  }
  out.push(`<script>${STATUS_PAGE_SCRIPT}</script></body></html>\n`);
  return { status: options.service !== undefined && selected === undefined ? 404 : 200, html: out.join('') };
}
