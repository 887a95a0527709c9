// The enrolment QR code as inline SVG: drawn here from the module matrix of qrcode-generator (a
// dependency-free encoder), one <path>, presentation attributes only, so the page needs no image
// request, no data: URI and no change to its Content-Security-Policy.
import qrcode from 'qrcode-generator';
import { escapeHtml } from '../pages.js';

/** The quiet zone the QR specification asks for, in modules. */
const QUIET_ZONE = 4;

export function qrSvg(text: string, label: string, sizePx = 232): string {
  // M: 15% of the code may be damaged or dirty; an otpauth URI still fits a small version.
  const code = qrcode(0, 'M');
  code.addData(text, 'Byte');
  code.make();
  const count = code.getModuleCount();
  const side = count + 2 * QUIET_ZONE;
  let path = '';
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) {
      if (code.isDark(row, col)) path += `M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`;
    }
  }
  // Dark on white whatever the page's colour scheme: scanners expect it.
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="qr" role="img" aria-label="${escapeHtml(label)}" width="${sizePx}" height="${sizePx}" viewBox="0 0 ${side} ${side}" shape-rendering="crispEdges">` +
    `<rect width="${side}" height="${side}" fill="#ffffff"/><path fill="#000000" d="${path}"/></svg>`
  );
}
