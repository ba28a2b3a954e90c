// Deployment policies (read-only here).

import { api } from '../api.js';
import { add, badge, fmtSeconds, h, pager, plural, table, timeEl } from '../dom.js';
import { navigate } from '../session.js';

const PAGE_SIZE = 50;

export async function render(main, { query, signal }) {
  const page = Math.max(1, parseInt(query.page || '1', 10) || 1);
  const [data, packages] = await Promise.all([
    api('/policies', { query: { page, page_size: PAGE_SIZE }, signal }),
    api('/packages', { query: { page_size: 500 }, signal }).then((p) => new Map(p.items.map((x) => [x.id, x])), () => new Map()),
  ]);
  const what = (p) => {
    if (p.category === 'script') return h('code', { class: 'clip', title: p.script }, p.script);
    const pkg = packages.get(p.package_id);
    return pkg ? `${pkg.name} ${pkg.version}` : `package #${p.package_id}`;
  };
  add(main, 
    h('div', { class: 'page-head' }, h('h1', {}, 'Policies')),
    table([
      { title: 'Name', cell: (p) => h('strong', {}, p.name) },
      { title: 'State', cell: (p) => badge(p.state, { kind: 'policy' }) },
      { title: 'Category', cell: (p) => p.category },
      { title: 'Operation', cell: (p) => p.operation },
      { title: 'Package or script', cell: what },
      { title: 'Run as', cell: (p) => p.run_as.replace(/_/g, ' ') },
      { title: 'Network', cell: (p) => (p.network_condition === 'lan_only' ? 'LAN only' : 'any') },
      { title: 'Retries', cell: (p) => (p.retries ? `${p.retries} × ${fmtSeconds(p.retry_interval)}${p.retry_after_reboot ? ', after reboot' : ''}` : 'none') },
      { title: 'Updated', cell: (p) => timeEl(p.updated_at) },
    ], data.items, { label: 'Policies', empty: 'No policies yet.' }),
    data.total > PAGE_SIZE ? pager(data, (p) => navigate(`#/policies?page=${p}`), 'Policy pages') : null,
    h('p', { class: 'muted small' }, plural(data.total, 'policy', 'policies')));
}
