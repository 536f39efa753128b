// notion-image-cdn: the Notion image CDN's URL rules for frontends.

export type ImageFormat = 'auto' | 'webp' | 'avif' | 'png' | 'jpeg' | 'jpg' | 'original';
export type Fit = 'cover' | 'contain' | 'fill' | 'inside' | 'outside';

export interface TransformOptions {
  /** 1..8192; snapped up to the CDN's ALLOWED_WIDTHS (after dpr). */
  width?: number;
  /** 1..8192; with width, scaled with it to keep the aspect ratio. */
  height?: number;
  /** Default 'auto': AVIF, else WebP, else the source's format, from the browser's Accept. */
  format?: ImageFormat;
  /** 1..100; snapped to the nearest of QUALITY_STEPS. */
  quality?: number;
  /** Default 'inside' (never enlarges). */
  fit?: Fit;
  /** 1..4, one decimal; multiplies width and height. */
  dpr?: number;
}

export interface UrlOptions extends TransformOptions {
  /** The CDN's address, e.g. 'https://images.example.com' (trailing slashes dropped), or '' / a path for the same origin. */
  cdnBaseUrl: string;
  /** More file hosts read like Notion's S3 form (the CDN's ALLOWED_DOMAINS syntax), e.g. an S3-compatible mirror. */
  allowedDomains?: string | string[];
}

/** The CDN's default ALLOWED_WIDTHS. */
export declare const ALLOWED_WIDTHS: readonly number[];
/** The CDN's default QUALITY_STEPS. */
export declare const QUALITY_STEPS: readonly number[];

/** Use the CDN's own ALLOWED_WIDTHS / QUALITY_STEPS when they are not the defaults. */
export declare function configure(options: { allowedWidths?: number[]; qualitySteps?: number[] }): {
  allowedWidths: number[];
  qualitySteps: number[];
};

/** A Notion file URL -> {cdnBaseUrl}/img/{workspace}/{id}/{filename}?...; anything else unchanged. */
export declare function getOptimizedUrl(url: string, options: UrlOptions): string;
/** True for a file URL on one of Notion's four hosts that the CDN can serve. */
export declare function isNotionImageUrl(url: string, options?: { allowedDomains?: string | string[] }): boolean;

export interface NotionFileUrl {
  workspaceId: string;
  fileId: string;
  blockId: string | null;
  filename: string;
  /** Unix seconds, when the URL says. */
  expiresAt: number | null;
}
export declare function parseNotionUrl(url: string, options?: { allowedDomains?: string | string[] }): NotionFileUrl | null;

/** A Notion API image block (or any object of that shape). */
export interface NotionImageBlock {
  id?: string;
  type: 'image';
  image:
    | { type: 'file'; file: { url: string; expiry_time?: string }; caption?: unknown }
    | { type: 'external'; external: { url: string }; caption?: unknown };
}
/** The block's permanent CDN URL (by block id: nothing to register, nothing expires). */
export declare function fromNotionBlock(block: NotionImageBlock, options: UrlOptions): string;

export interface PluginOptions {
  cdnBaseUrl: string;
  defaultFormat?: ImageFormat;
  defaultQuality?: number;
  defaultWidth?: number;
  allowedDomains?: string | string[];
}
/** For markdown / HTML pipelines: src => CDN URL (non-Notion src unchanged). */
export declare function createNotionImagePlugin(options: PluginOptions): (src: string) => string;

/**
 * "url 32w, url 48w, ..." over ALLOWED_WIDTHS (up to 2x width when given), for a Notion file URL or a
 * Notion API image block (by block id, as fromNotionBlock); '' for anything else.
 */
export declare function srcSet(source: string | NotionImageBlock, options: UrlOptions): string;
/** A sizes attribute: '(max-width: Wpx) 100vw, Wpx', or '100vw' without width. */
export declare function sizes(options?: { width?: number }): string;

export interface KeyOptions {
  allowedWidths?: number[];
  qualitySteps?: number[];
  /** HMAC_SECRET, when the CDN requires signatures (server-side only). */
  secret?: string;
}
export interface CacheKeyInfo {
  /** v1/{workspace}/{id}/{filename}?fmt=...&w=... */
  key: string;
  /** Lower-case hex SHA-256 of key: the storage name. */
  hash: string;
  /** Whether the answer depends on Accept (Vary: Accept). */
  vary: boolean;
}
/** The canonical cache key of an /img path or CDN URL; throws an Error with .code (INVALID_PATH, ...). */
export declare function cacheKey(path: string, accept?: string, options?: KeyOptions): string;
export declare function cacheKeyInfo(path: string, accept?: string, options?: KeyOptions): CacheKeyInfo;

/** Server-side only: the URL with its sig parameter, as `nic sign` prints it. */
export declare function signUrl(url: string, secret: string): string;
