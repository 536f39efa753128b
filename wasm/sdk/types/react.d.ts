import type { CSSProperties, ImgHTMLAttributes, ReactElement } from 'react';
import type { Fit, ImageFormat } from './index.js';

export interface NotionImageProps
  extends Omit<ImgHTMLAttributes<HTMLImageElement>, 'src' | 'width' | 'height' | 'loading' | 'style'> {
  /** A Notion file URL (any other src is rendered as it is). */
  src: string;
  cdnBaseUrl: string;
  alt: string;
  width?: number;
  height?: number;
  format?: ImageFormat;
  quality?: number;
  fit?: Fit;
  className?: string;
  /** Default 'lazy'. */
  loading?: 'lazy' | 'eager';
  style?: CSSProperties;
  /** Default: sizes({width}). */
  sizes?: string;
}

/** An <img decoding="async"> with the CDN URL, a srcset over ALLOWED_WIDTHS and width/height. */
export declare function NotionImage(props: NotionImageProps): ReactElement;
