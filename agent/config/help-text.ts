// The --help text: usage, then each setting of the table with its variable, default and help, wrapped to 100 columns.

import { SETTINGS } from './settings-table.ts';

/** The --help text, generated from the table so that it cannot drift from what is parsed. */
export function helpText(): string {
  const lines = [
    'meshlite agent: balances every gRPC request, not every connection.',
    '',
    'Usage: npm run agent -- [--name value | --name=value]...',
    '       npm run agent -- uninstall [--iptables-backend auto|nft|legacy]',
    '         removes every iptables rule, chain and ipset the agent created, and nothing else.',
    '       npm run agent -- check [the same settings as the agent]',
    '         checks this node for what that agent needs (iptables, ipset, CNI, API and RBAC, ports): one ok or',
    '         FAIL line per check, exit 1 on a problem.',
    '',
    'Every setting has a flag and an environment variable; a flag overrides its variable.',
    '',
  ];
  for (const s of SETTINGS) {
    lines.push(`  ${s.flag} ${s.metavar}`);
    lines.push(`      env ${s.env}, default ${s.defaultText}`);
    for (const line of wrap(s.help, 100)) lines.push(`      ${line}`);
    lines.push('');
  }
  lines.push('  --help, -h', '      Print this text and exit.');
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}
