import t from 'tap';
import { chooseEndpoint, stsRegionOf } from '../../client/sts-endpoint-region.js';

t.test('credential-scope region of each endpoint form', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://sts.amazonaws.com/', 'us-east-1'],
    ['https://sts.eu-west-1.amazonaws.com/', 'eu-west-1'],
    ['https://sts-fips.us-gov-west-1.amazonaws.com/', 'us-gov-west-1'],
    ['https://sts.cn-northwest-1.amazonaws.com.cn/', 'cn-northwest-1'],
    ['https://vpce-0abc-1234.sts.ap-southeast-2.vpce.amazonaws.com/', 'ap-southeast-2'],
    ['http://127.0.0.1:8080/dev/sts/', 'us-east-1'],
  ];
  for (const [url, region] of cases) t.equal(stsRegionOf(url), region, url);
});

t.test('the profile region picks among several endpoints; otherwise the first', async (t) => {
  const list = ['https://sts.us-east-1.amazonaws.com/', 'https://sts.eu-west-1.amazonaws.com/'];
  t.equal(chooseEndpoint(list, 'eu-west-1'), list[1]);
  t.equal(chooseEndpoint(list, 'ap-south-1'), list[0]);
  t.equal(chooseEndpoint(list, undefined), list[0]);
  t.equal(chooseEndpoint([], 'eu-west-1'), undefined);
});
