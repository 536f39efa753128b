// <NotionImage>: an <img> whose src, srcset and sizes come from the SDK.
// A body, wrapped by wasm/sdk/build.mjs with `createElement` from react and
// the SDK's functions in scope.

/**
 * <NotionImage src cdnBaseUrl alt width? height? format? quality? fit? className?
 *   loading="lazy" style? sizes?/>: a CDN URL for a Notion file URL, a srcset over
 * the CDN's ALLOWED_WIDTHS and width/height attributes (no layout shift).
 * Any other src is rendered as it is, without srcset.
 */
function NotionImage(props) {
  const { src, cdnBaseUrl, alt, width, height, format, quality, fit, className, loading = 'lazy', style,
    sizes: sizesProp, ...rest } = props;
  const options = { cdnBaseUrl, width, height, format, quality, fit };
  const url = getOptimizedUrl(src, options);
  const set = url !== src ? srcSet(src, options) : '';
  return createElement('img', {
    ...rest,
    src: url,
    srcSet: set || undefined,
    sizes: set ? (sizesProp ?? sizes({ width })) : undefined,
    alt,
    width,
    height,
    className,
    loading,
    style,
    decoding: 'async',
  });
}
