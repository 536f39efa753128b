// <NotionImage> from notion-image-cdn/react, rendered with react-dom/server
// (ESM and CJS builds of the packed package).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { scratchProject } from './harness.mjs';

const WS = 'e4a1c3b2-7f6d-4e5c-9b8a-1d2c3b4a5f60';
const FILE = '9c8b7a6f-5e4d-4c3b-a2f1-0e9d8c7b6a54';
const BLOCK = '11112222-3333-4444-5555-666677778888';
const SRC = `https://file.notion.so/f/f/${WS}/${FILE}/photo.jpg?table=block&id=${BLOCK}&expirationTimestamp=1&signature=s`;
const CDN = 'https://images.example.com';
const path = `/img/${WS.replaceAll('-', '')}/${BLOCK.replaceAll('-', '')}/photo.jpg`;

// The markup's one <img a="b" ...> -> {a: 'b'}: names lower-cased (HTML's are
// case-insensitive; React writes srcSet), &amp; unescaped. React 19 may put a
// <link rel="preload"> for an eager image before it.
function attributes(html) {
  const imgs = [...html.matchAll(/<img ([^>]*?)\/?>/g)];
  assert.equal(imgs.length, 1, html);
  const out = {};
  for (const a of imgs[0][1].matchAll(/([a-zA-Z-]+)="([^"]*)"/g)) out[a[1].toLowerCase()] = a[2].replaceAll('&amp;', '&');
  return out;
}

let project;
before(() => {
  project = scratchProject('nic-sdk-react-');
});
after(() => project.remove());

for (const flavour of ['esm', 'cjs']) {
  describe(`NotionImage (${flavour})`, () => {
    let React;
    let render;
    let NotionImage;
    let sdk;
    before(async () => {
      if (flavour === 'esm') {
        ({ NotionImage } = await project.esmReact());
        sdk = await project.esm();
        React = (await import(project.require.resolve('react'))).default;
        ({ renderToStaticMarkup: render } = await import(project.require.resolve('react-dom/server')));
      } else {
        ({ NotionImage } = project.require('notion-image-cdn/react'));
        sdk = project.require('notion-image-cdn');
        React = project.require('react');
        ({ renderToStaticMarkup: render } = project.require('react-dom/server'));
      }
    });

    it('renders the CDN URL, a srcset over ALLOWED_WIDTHS, width/height and async decoding', () => {
      const html = render(React.createElement(NotionImage,
        { src: SRC, cdnBaseUrl: CDN, alt: 'A photo', width: 400, height: 300, format: 'webp', className: 'hero' }));
      const a = attributes(html);
      // 400 snaps up to 480 (ALLOWED_WIDTHS), the height with it.
      assert.equal(a.src, `${CDN}${path}?w=480&h=360&fmt=webp`);
      assert.equal(a.width, '400');
      assert.equal(a.height, '300');
      assert.equal(a.alt, 'A photo');
      assert.equal(a.class, 'hero');
      assert.equal(a.loading, 'lazy');
      assert.equal(a.decoding, 'async');
      assert.equal(a.sizes, '(max-width: 400px) 100vw, 400px');
      const entries = a.srcset.split(', ');
      const widths = sdk.ALLOWED_WIDTHS.filter((w) => w <= 800);
      assert.deepEqual(entries.map((e) => e.split(' ')[1]), widths.map((w) => `${w}w`));
      for (const [i, e] of entries.entries()) {
        assert.equal(e.split(' ')[0], sdk.getOptimizedUrl(SRC, { cdnBaseUrl: CDN, width: widths[i],
          height: Math.round((300 * widths[i]) / 400), format: 'webp' }));
      }
    });

    it('passes other props through and honours loading/sizes', () => {
      const a = attributes(render(React.createElement(NotionImage,
        { src: SRC, cdnBaseUrl: CDN, alt: '', loading: 'eager', sizes: '50vw', style: { borderRadius: 4 }, id: 'x' })));
      assert.equal(a.loading, 'eager');
      assert.equal(a.sizes, '50vw');
      assert.equal(a.id, 'x');
      assert.equal(a.style, 'border-radius:4px');
      assert.equal(a.src, `${CDN}${path}`);
      assert.equal(a.srcset.split(', ').length, sdk.ALLOWED_WIDTHS.length);
    });

    it('renders any other src as it is, without srcset', () => {
      const a = attributes(render(React.createElement(NotionImage, { src: '/local.png', cdnBaseUrl: CDN, alt: 'x', width: 10 })));
      assert.equal(a.src, '/local.png');
      assert.equal(a.srcset, undefined);
      assert.equal(a.sizes, undefined);
      assert.equal(a.decoding, 'async');
    });

    it('throws a TypeError naming a bad option', () => {
      assert.throws(() => render(React.createElement(NotionImage, { src: SRC, cdnBaseUrl: CDN, alt: '', format: 'gif' })),
        { name: 'TypeError', option: 'format' });
    });
  });
}
