/**
 * The page's Admin tab (served at /assets/admin-tab.js and loaded by index.html as a module; plain
 * browser JavaScript, no build step). With the master key (`MASTER_KEY`) it lists the virtual API
 * keys (`apiKeys`, a page at a time by the connection's cursor), makes one (`createApiKey`: the key
 * is shown this once) and revokes one (`revokeApiKey`, after a confirmation); and it shows the
 * usage of the last 30 UTC days (`usage`): total tokens per day drawn with uPlot (the global
 * `uPlot` of /assets/uplot.iife.min.js) and a table grouped by key, model or provider.
 * Everything goes over GraphQL on HTTP (`POST /graphql`, `Authorization: Bearer <master key>`);
 * errors are shown as `CODE: message` from `extensions.code`. The names and fields are those of
 * schema.graphql (docs/graphql-api.md#virtual-keys, docs/usage.md).
 */

const API_KEY_FIELDS = `id name keyPrefix status createdAt expiresAt revokedAt
  limits { requestsPerMinute tokensPerMinute maxConcurrentGenerations budgetTokens budgetPeriod allowedModels allowedProviders }`;
const API_KEYS_QUERY = `query AdminApiKeys($first: Int!, $after: String) {
  apiKeys(first: $first, after: $after) { nodes { ${API_KEY_FIELDS} } pageInfo { hasNextPage endCursor } }
}`;
const CREATE_API_KEY = `mutation AdminCreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { ${API_KEY_FIELDS} } } }`;
const REVOKE_API_KEY = `mutation AdminRevokeApiKey($id: ID!) { revokeApiKey(id: $id) { ${API_KEY_FIELDS} } }`;
const USAGE_QUERY = `query AdminUsage($from: DateTime!, $to: DateTime!, $groupBy: UsageGroupBy!) {
  daily: usage(from: $from, to: $to, groupBy: [DAY]) { groups { day totalTokens } }
  grouped: usage(from: $from, to: $to, groupBy: [$groupBy]) {
    groups { key model provider requests totalTokens images cost unpricedRequests meanTimeToFirstTokenMs }
  }
}`;

/** Keys per page of the table (the server allows 1 to 100). */
const KEYS_PAGE_SIZE = 10;
/** UTC days in the usage chart and table, today included. */
const USAGE_DAYS = 30;
const DAY_MS = 86_400_000;
/** Height of the chart, CSS pixels. */
const CHART_HEIGHT = 240;
/** The steps between the token axis's ticks: 1, 2, 5, 10, 20, 50, … (tokens are whole). */
const TOKEN_TICK_STEPS = Array.from({ length: 13 }, (_, power) => [1, 2, 5].map((step) => step * 10 ** power)).flat();
/** Where the master key is kept: sessionStorage, so it goes with the browser tab (an admin secret is not kept on the machine). */
const MASTER_KEY_STORAGE = 'graphql-ai-gateway.master-key';

const $ = (id) => document.getElementById(id);
const elements = {
  panel: $('panel-admin'),
  masterKeyForm: $('master-key-form'), masterKey: $('master-key'),
  keysError: $('keys-error'), keysBody: $('keys-body'), keysRefresh: $('keys-refresh'),
  keysPrevious: $('keys-previous'), keysNext: $('keys-next'), keysPage: $('keys-page'),
  createForm: $('create-key-form'), createError: $('create-key-error'), createButton: $('create-key'),
  keyName: $('key-name'), keyExpires: $('key-expires'), keyRequestsPerMinute: $('key-requests-per-minute'),
  keyTokensPerMinute: $('key-tokens-per-minute'), keyConcurrent: $('key-concurrent'),
  keyBudgetTokens: $('key-budget-tokens'), keyBudgetPeriod: $('key-budget-period'),
  keyAllowedModels: $('key-allowed-models'), keyAllowedProviders: $('key-allowed-providers'),
  newKey: $('new-key'), newKeyValue: $('new-key-value'), newKeyCopy: $('new-key-copy'),
  newKeyDone: $('new-key-done'), newKeyStatus: $('new-key-status'),
  usageError: $('usage-error'), usageRefresh: $('usage-refresh'), usageChart: $('usage-chart'),
  usageChartCaption: $('usage-chart-caption'), usageGroupBy: $('usage-group-by'),
  usageGroupHeader: $('usage-group-header'), usageBody: $('usage-body'),
  revokeDialog: $('revoke-dialog'), revokeText: $('revoke-text'),
  revokeCancel: $('revoke-cancel'), revokeConfirm: $('revoke-confirm'),
};

/** Shows `message` in an error element, or hides it when empty. */
function showError(element, message) {
  element.textContent = message || '';
  element.hidden = !message;
}

/** `CODE: message` for each GraphQL error (`extensions.code`), joined by `; `. */
function describeErrors(errors) {
  return errors.map((error) => (error?.extensions?.code ? `${error.extensions.code}: ${error.message}` : String(error?.message ?? error))).join('; ');
}

const masterKey = () => elements.masterKey.value.trim();

/**
 * A query or mutation over HTTP with the master key; resolves with `data`.
 * @throws Error whose message is `CODE: message` of the GraphQL errors, or says the server could
 *   not be reached or answered something that is not GraphQL.
 */
async function adminRequest(query, variables) {
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        'x-graphql-yoga-csrf': '1',
        ...(masterKey() && { authorization: `Bearer ${masterKey()}` }),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new Error('Cannot reach the server.');
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`The server answered ${response.status} ${response.statusText} without a GraphQL result.`);
  }
  if (body.errors?.length) throw new Error(describeErrors(body.errors));
  return body.data;
}

// ---- Formatting -------------------------------------------------------------------------------

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const money = new Intl.NumberFormat('en-US', { maximumFractionDigits: 6 });

/** `YYYY-MM-DD HH:MM` in UTC, in a `<time>`; `empty` when there is no instant. */
function timeCell(iso, empty) {
  const cell = document.createElement('td');
  if (!iso) {
    cell.textContent = empty;
    return cell;
  }
  const time = document.createElement('time');
  time.dateTime = iso;
  time.textContent = new Date(iso).toISOString().slice(0, 16).replace('T', ' ');
  cell.append(time);
  return cell;
}

/** A table cell with text; `number` aligns it right. */
function cell(text, { number = false } = {}) {
  const element = document.createElement('td');
  element.textContent = text;
  if (number) element.className = 'number';
  return element;
}

/** One row with one cell spanning the table, saying it is empty. */
function emptyRow(text, columns) {
  const row = document.createElement('tr');
  const element = cell(text);
  element.colSpan = columns;
  element.className = 'empty';
  row.append(element);
  return row;
}

/** A key's limits in words, e.g. `30 requests/min, 1,000,000 tokens per month, models: stories260K`; `none` without any. */
function describeLimits(limits) {
  const parts = [];
  if (limits.requestsPerMinute != null) parts.push(`${integer.format(limits.requestsPerMinute)} requests/min`);
  if (limits.tokensPerMinute != null) parts.push(`${integer.format(limits.tokensPerMinute)} tokens/min`);
  if (limits.maxConcurrentGenerations != null) parts.push(`${integer.format(limits.maxConcurrentGenerations)} concurrent`);
  if (limits.budgetTokens != null) {
    const period = limits.budgetPeriod === 'TOTAL' ? 'in total' : `per ${String(limits.budgetPeriod).toLowerCase()}`;
    parts.push(`${integer.format(limits.budgetTokens)} tokens ${period}`);
  }
  if (limits.allowedModels) parts.push(`models: ${limits.allowedModels.join(', ')}`);
  if (limits.allowedProviders) parts.push(`providers: ${limits.allowedProviders.join(', ')}`);
  return parts.length ? parts.join('; ') : 'none';
}

// ---- Keys -------------------------------------------------------------------------------------

/** The cursor each page of the table was asked with (`null` for the first); `keysPage` indexes it. */
let pageCursors = [null];
let keysPage = 0;
/** Key names by id, of every key seen, to name the usage table's `key:<id>` groups. */
const keyNames = new Map();
/** The key the confirmation dialog is about, or null. */
let revoking = null;
/** Counts the loads of the key list; an answer to one that is not the latest is dropped. */
let keysLoads = 0;

/** A table row for a key; a revoke button unless it is revoked already. */
function keyRow(key) {
  const row = document.createElement('tr');
  row.dataset.testid = 'key-row';
  row.dataset.keyId = key.id;
  row.dataset.status = key.status;
  const prefix = document.createElement('code');
  prefix.textContent = `${key.keyPrefix}…`;
  const prefixCell = document.createElement('td');
  prefixCell.append(prefix);
  const actions = document.createElement('td');
  if (key.status !== 'REVOKED') {
    const revoke = document.createElement('button');
    revoke.type = 'button';
    revoke.textContent = 'Revoke';
    revoke.dataset.testid = 'key-revoke';
    revoke.setAttribute('aria-label', `Revoke ${key.name}`);
    revoke.addEventListener('click', () => askToRevoke(key));
    actions.append(revoke);
  }
  row.append(
    cell(key.name), prefixCell, cell(key.status), timeCell(key.createdAt, ''), timeCell(key.expiresAt, 'never'),
    timeCell(key.revokedAt, '—'), cell(describeLimits(key.limits)), actions,
  );
  return row;
}

/** Loads the table's current page (`keysPage`) of keys, newest first. */
async function loadKeys() {
  const load = ++keysLoads;
  elements.keysRefresh.disabled = true;
  try {
    const { apiKeys } = await adminRequest(API_KEYS_QUERY, { first: KEYS_PAGE_SIZE, after: pageCursors[keysPage] });
    if (load !== keysLoads) return;
    showError(elements.keysError, '');
    for (const key of apiKeys.nodes) keyNames.set(key.id, key.name);
    elements.keysBody.replaceChildren(...(apiKeys.nodes.length ? apiKeys.nodes.map(keyRow) : [emptyRow(keysPage ? 'No more keys.' : 'No keys yet.', 8)]));
    pageCursors = pageCursors.slice(0, keysPage + 1);
    if (apiKeys.pageInfo.hasNextPage) pageCursors.push(apiKeys.pageInfo.endCursor);
    elements.keysPage.textContent = `Page ${keysPage + 1}`;
    elements.keysPrevious.disabled = keysPage === 0;
    elements.keysNext.disabled = !apiKeys.pageInfo.hasNextPage;
    elements.keysBody.dataset.state = 'loaded';
  } catch (error) {
    if (load !== keysLoads) return;
    showError(elements.keysError, error.message);
    elements.keysBody.replaceChildren(emptyRow('Keys unavailable.', 8));
    elements.keysPrevious.disabled = elements.keysNext.disabled = true;
    elements.keysPage.textContent = '';
    elements.keysBody.dataset.state = 'failed';
  } finally {
    elements.keysRefresh.disabled = false;
  }
}

/** A number field's value as an integer, or undefined when empty (the browser has checked it against `min` and `step`). */
function integerField(input) {
  return input.value === '' ? undefined : Number(input.value);
}

/** A comma list field's entries, trimmed; undefined when it has none. */
function listField(input) {
  const entries = input.value.split(',').map((entry) => entry.trim()).filter(Boolean);
  return entries.length ? entries : undefined;
}

/** The `CreateApiKeyInput` the form describes. */
function createInput() {
  const limits = {
    requestsPerMinute: integerField(elements.keyRequestsPerMinute),
    tokensPerMinute: integerField(elements.keyTokensPerMinute),
    maxConcurrentGenerations: integerField(elements.keyConcurrent),
    budgetTokens: integerField(elements.keyBudgetTokens),
    allowedModels: listField(elements.keyAllowedModels),
    allowedProviders: listField(elements.keyAllowedProviders),
  };
  if (limits.budgetTokens !== undefined) limits.budgetPeriod = elements.keyBudgetPeriod.value;
  for (const [name, value] of Object.entries(limits)) if (value === undefined) delete limits[name];
  const input = { name: elements.keyName.value.trim() };
  // datetime-local is the browser's local time; the server wants an instant.
  if (elements.keyExpires.value) input.expiresAt = new Date(elements.keyExpires.value).toISOString();
  if (Object.keys(limits).length) input.limits = limits;
  return input;
}

/** Shows a new key once, with its copy button; `hideNewKey` removes it from the page. */
function showNewKey(key) {
  elements.newKeyValue.textContent = key;
  elements.newKeyStatus.textContent = '';
  elements.newKey.hidden = false;
  elements.newKeyCopy.focus();
}

function hideNewKey() {
  elements.newKeyValue.textContent = '';
  elements.newKeyStatus.textContent = '';
  elements.newKey.hidden = true;
}

async function createKey() {
  showError(elements.createError, '');
  hideNewKey();
  elements.createButton.disabled = true;
  try {
    const { createApiKey } = await adminRequest(CREATE_API_KEY, { input: createInput() });
    keyNames.set(createApiKey.apiKey.id, createApiKey.apiKey.name);
    elements.createForm.reset();
    showNewKey(createApiKey.key);
    pageCursors = [null];
    keysPage = 0;
    await loadKeys();
  } catch (error) {
    showError(elements.createError, error.message);
  } finally {
    elements.createButton.disabled = false;
  }
}

async function copyNewKey() {
  try {
    await navigator.clipboard.writeText(elements.newKeyValue.textContent);
    elements.newKeyStatus.textContent = 'Copied to the clipboard.';
  } catch {
    getSelection().selectAllChildren(elements.newKeyValue);
    elements.newKeyStatus.textContent = 'Could not copy: the key is selected, copy it with your keyboard.';
  }
}

/** Opens the confirmation dialog for revoking `key`. */
function askToRevoke(key) {
  revoking = key;
  elements.revokeText.textContent = `“${key.name}” (${key.keyPrefix}…) is refused at once and its open connections are closed. This cannot be undone.`;
  elements.revokeDialog.showModal();
  elements.revokeCancel.focus();
}

async function revokeConfirmed() {
  const key = revoking;
  elements.revokeDialog.close();
  if (!key) return;
  try {
    const { revokeApiKey } = await adminRequest(REVOKE_API_KEY, { id: key.id });
    showError(elements.keysError, '');
    elements.keysBody.querySelector(`tr[data-key-id="${CSS.escape(key.id)}"]`)?.replaceWith(keyRow(revokeApiKey));
  } catch (error) {
    showError(elements.keysError, `Could not revoke “${key.name}”: ${error.message}`);
  }
}

// ---- Usage ------------------------------------------------------------------------------------

/** The chart (a uPlot), once drawn. */
let chart = null;
/** Counts the loads of the usage; an answer to one that is not the latest is dropped. */
let usageLoads = 0;

/** The last `USAGE_DAYS` UTC days, today included: their starts (ms) and the report's range `[from, to)`. */
function usageRange(now = new Date()) {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const days = Array.from({ length: USAGE_DAYS }, (_, index) => today - (USAGE_DAYS - 1 - index) * DAY_MS);
  return { days, from: new Date(days[0]).toISOString(), to: new Date(today + DAY_MS).toISOString() };
}

/** A CSS custom property of the page (its colours follow the light or dark scheme). */
const cssVariable = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** uPlot's options for a bar chart of tokens per UTC day, `width` CSS pixels wide. */
function chartOptions(width) {
  const text = cssVariable('--muted');
  const grid = cssVariable('--border');
  const halfDay = DAY_MS / 2000;
  return {
    width,
    height: CHART_HEIGHT,
    // Days are UTC days: show the axis and the legend in UTC, not in the browser's zone.
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC'),
    scales: {
      x: { time: true, range: (self, min, max) => [min - halfDay, max + halfDay] },
      y: { range: (self, min, max) => [0, Math.max(max, 1) * 1.1] },
    },
    series: [
      { label: 'UTC day', value: '{YYYY}-{MM}-{DD}' },
      {
        label: 'Total tokens',
        stroke: cssVariable('--accent'),
        fill: cssVariable('--accent'),
        width: 0,
        paths: uPlot.paths.bars({ size: [0.7, 40] }),
        points: { show: false },
        value: (self, value) => (value == null ? '—' : integer.format(value)),
      },
    ],
    axes: [
      {
        stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 },
        values: (self, ticks) => ticks.map((seconds) => new Date(seconds * 1000).toISOString().slice(5, 10)),
      },
      {
        stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 64, incrs: TOKEN_TICK_STEPS,
        values: (self, ticks) => ticks.map((tick) => integer.format(tick)),
      },
    ],
    cursor: { drag: { x: false, y: false } },
    // What was drawn, for people reading the DOM and for the tests: the state and the sum of the bars.
    hooks: {
      draw: [(self) => {
        elements.usageChart.dataset.state = 'drawn';
        elements.usageChart.dataset.totalTokens = String(self.data[1].reduce((sum, value) => sum + (value ?? 0), 0));
      }],
    },
  };
}

/** Draws (or redraws) the chart of `tokens[i]` on `days[i]` (ms). */
function drawChart(days, tokens) {
  if (typeof uPlot === 'undefined') {
    elements.usageChartCaption.textContent = 'Could not load /assets/uplot.iife.min.js: no chart. The table below still holds the numbers.';
    return;
  }
  const data = [days.map((day) => day / 1000), tokens];
  const width = Math.max(elements.usageChart.clientWidth, 280);
  if (chart) {
    chart.setData(data);
    return;
  }
  elements.usageChart.replaceChildren();
  chart = new uPlot(chartOptions(width), data, elements.usageChart);
}

// A hidden panel has no width: size the chart when it is shown or resized.
new ResizeObserver(() => {
  const width = elements.usageChart.clientWidth;
  if (chart && width > 0 && width !== chart.width) chart.setSize({ width, height: CHART_HEIGHT });
}).observe(elements.usageChart);

/** The label of a usage group: its key (with the key's name when known), model or provider. */
function groupLabel(group, groupBy) {
  if (groupBy === 'MODEL') return group.model ?? '(none)';
  if (groupBy === 'PROVIDER') return group.provider ?? '(none)';
  if (!group.key) return '(started from code)';
  const name = group.key.startsWith('key:') ? keyNames.get(group.key.slice(4)) : undefined;
  return name ? `${name} (${group.key})` : group.key;
}

function usageRow(group, groupBy) {
  const row = document.createElement('tr');
  row.dataset.testid = 'usage-row';
  row.dataset.group = { KEY: group.key, MODEL: group.model, PROVIDER: group.provider }[groupBy] ?? '';
  const cost = group.cost != null ? money.format(group.cost) : group.unpricedRequests > 0 ? `— (${integer.format(group.unpricedRequests)} unpriced)` : '—';
  const ttft = group.meanTimeToFirstTokenMs != null ? `${integer.format(group.meanTimeToFirstTokenMs)} ms` : '—';
  const tokens = cell(integer.format(group.totalTokens), { number: true });
  tokens.dataset.testid = 'usage-tokens';
  row.append(
    cell(groupLabel(group, groupBy)), cell(integer.format(group.requests), { number: true }), tokens,
    cell(integer.format(group.images), { number: true }), cell(cost, { number: true }), cell(ttft, { number: true }),
  );
  return row;
}

/** Loads the usage of the last `USAGE_DAYS` UTC days: the chart (by day) and the table (by the chosen group). */
async function loadUsage() {
  const groupBy = elements.usageGroupBy.value;
  const { days, from, to } = usageRange();
  const load = ++usageLoads;
  elements.usageRefresh.disabled = true;
  try {
    const { daily, grouped } = await adminRequest(USAGE_QUERY, { from, to, groupBy });
    if (load !== usageLoads) return;
    showError(elements.usageError, '');
    const byDay = new Map(daily.groups.map((group) => [group.day, group.totalTokens]));
    drawChart(days, days.map((day) => byDay.get(new Date(day).toISOString().slice(0, 10)) ?? 0));
    elements.usageGroupHeader.textContent = elements.usageGroupBy.selectedOptions[0].textContent;
    elements.usageBody.replaceChildren(
      ...(grouped.groups.length ? grouped.groups.map((group) => usageRow(group, groupBy)) : [emptyRow('No generations ended in these 30 days.', 6)]),
    );
    elements.usageBody.dataset.state = 'loaded';
    elements.usageBody.dataset.groupBy = groupBy;
  } catch (error) {
    if (load !== usageLoads) return;
    showError(elements.usageError, error.message);
    elements.usageBody.replaceChildren(emptyRow('Usage unavailable.', 6));
    elements.usageBody.dataset.state = 'failed';
  } finally {
    elements.usageRefresh.disabled = false;
  }
}

// ---- Wiring -----------------------------------------------------------------------------------

/** Whether the keys and usage were loaded since the master key last changed. */
let loaded = false;

function loadAll() {
  loaded = true;
  pageCursors = [null];
  keysPage = 0;
  return Promise.all([loadKeys(), loadUsage()]);
}

elements.masterKey.value = sessionStorage.getItem(MASTER_KEY_STORAGE) ?? '';
elements.masterKeyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (masterKey()) sessionStorage.setItem(MASTER_KEY_STORAGE, masterKey());
  else sessionStorage.removeItem(MASTER_KEY_STORAGE);
  hideNewKey();
  loadAll();
});
elements.keysRefresh.addEventListener('click', () => loadKeys());
elements.keysNext.addEventListener('click', () => {
  keysPage += 1;
  loadKeys();
});
elements.keysPrevious.addEventListener('click', () => {
  keysPage = Math.max(0, keysPage - 1);
  loadKeys();
});
elements.createForm.addEventListener('submit', (event) => {
  event.preventDefault();
  createKey();
});
elements.newKeyCopy.addEventListener('click', () => copyNewKey());
elements.newKeyDone.addEventListener('click', () => hideNewKey());
elements.revokeConfirm.addEventListener('click', () => revokeConfirmed());
elements.revokeCancel.addEventListener('click', () => elements.revokeDialog.close());
elements.revokeDialog.addEventListener('close', () => { revoking = null; });
elements.usageRefresh.addEventListener('click', () => loadUsage());
elements.usageGroupBy.addEventListener('change', () => loadUsage());

/** Loads once the tab is shown with a master key typed; without one, waits for the form. */
function onShown() {
  if (!loaded && masterKey()) loadAll();
}
elements.panel.addEventListener('tabshown', onShown);
if (!elements.panel.hidden) onShown();
elements.panel.dataset.ready = 'true';
