// The software repository (read-only here; the API and `depot deploy` add packages).

import { api } from '../api.js';
import { add, fmtBytes, h, pager, plural, table, timeEl } from '../dom.js';
import { navigate } from '../session.js';

const PAGE_SIZE = 50;

export async function render(main, { query, signal }) {
  const page = Math.max(1, parseInt(query.page || '1', 10) || 1);
  const data = await api('/packages', { query: { page, page_size: PAGE_SIZE }, signal });
  const content = (p) => {
    if (p.content_sha256) {
      return h('span', { title: `sha256 ${p.content_sha256}` }, p.content_filename || 'uploaded', ' ',
        h('span', { class: 'muted' }, `(${fmtBytes(p.content_size)}, ${p.content_sha256.slice(0, 12)}…)`));
    }
    if (p.content_url) return h('span', { class: 'clip', title: p.content_url }, p.content_url);
    return h('span', { class: 'muted' }, 'none (on the host)');
  };
  add(main, 
    h('div', { class: 'page-head' }, h('h1', {}, 'Packages')),
    h('div', { class: 'list' },
      table([
        { title: 'Name', cell: (p) => h('strong', {}, p.name) },
        { title: 'Version', cell: (p) => p.version },
        { title: 'Platform', cell: (p) => p.platform },
        { title: 'Installer', cell: (p) => p.installer_type },
        { title: 'Product ID', cell: (p) => (p.product_id ? h('code', { class: 'clip', title: p.product_id }, p.product_id) : '—') },
        { title: 'Content', cell: content },
        { title: 'ID', class: 'num', cell: (p) => String(p.id) },
        { title: 'Updated', cell: (p) => timeEl(p.updated_at) },
      ], data.items, { label: 'Packages', empty: 'No packages yet.' }),
      data.total > PAGE_SIZE ? pager(data, (p) => navigate(`#/packages?page=${p}`), 'Package pages') : null,
      h('p', { class: 'muted small' }, plural(data.total, 'package'))));
}
