/// The report page's own chart code: candlesticks with a volume panel, indicators, RSI, MACD and the
/// model's predictions on one canvas per symbol, drawn with the 2D canvas API.
///
/// Why not a charting library for these: Debian packages Chart.js (used for the training charts) but
/// neither a financial chart type (chartjs-chart-financial), a zoom plugin (chartjs-plugin-zoom) nor
/// TradingView's lightweight-charts; the report must stay one offline file built from packaged parts
/// only. So the price chart is drawn here, which also gives the level of detail needed for a month
/// of 1-minute bars: the visible bars are merged into candles at least 3 px wide (OHLC of the group,
/// indicators at the group's last bar), so candles and indicators stay visible at every zoom level.
///
/// Contract with the page (tests rely on it): `SERIES` (by `symbol|timeframe`), `ANOMS`, `SECTIONS`
/// are defined before this code; every chart is in `window.tapeCharts` with `zoomTo(first, last)`,
/// `draw()` (synchronous) and `stats` ({candles, indicatorPoints, markers, labels} of the last draw);
/// time-axis labels are `<span class="xlabel">` elements laid out by the browser (so their boxes can be
/// measured) and are placed so that they never overlap.
enum ReportScript {
    static let chart = #"""
const TIME_STEPS=[1e3,2e3,5e3,1e4,15e3,3e4,6e4,12e4,3e5,6e5,9e5,18e5,36e5,72e5,108e5,216e5,432e5,864e5,1728e5,6048e5,12096e5,2592e6,7776e6,31536e6];
const COLORS={up:'#26a69a',down:'#ef5350',sma:'#f39c12',ema:'#2962ff',bb:'#9e9e9e',rsi:'#7e57c2',macd:'#2962ff',signal:'#ef6c00',pred:'#d35400',real:'#90a4ae',grid:'#eceff1',text:'#37474f',buy:'#1565c0',sell:'#e65100'};
// Fills of the series' candles (s.fx candle, s.fs side 1/-1, s.fn fills, s.fq quantity, s.fp quantity-weighted price;
// at most two entries per stored candle) merged per drawn candle of g and side: one buy ▲ under the buys' weighted
// price, one sell ▼ over the sells', so the markers cost no more than the candles whatever the number of fills.
function drawFills(ctx,s,buckets,first,last,g,yOf,stats){
  const merged=new Map();
  for(let j=0;j<s.fx.length;j++){const i=s.fx[j];if(i<first||i>last)continue;const b=Math.floor(i/g)*g;const key=b*2+(s.fs[j]>0?0:1);
    let m=merged.get(key);if(!m){m={b:b,buy:s.fs[j]>0,n:0,q:0,pq:0,p:s.fp[j]};merged.set(key,m);}
    m.n+=s.fn[j];if(s.fp[j]!==null&&s.fq[j]>0){m.q+=s.fq[j];m.pq+=s.fq[j]*s.fp[j];}}
  ctx.lineWidth=1;ctx.strokeStyle='#fff';
  for(const m of merged.values()){const k=buckets[(m.b-buckets[0].b)/g];const p=m.q>0?m.pq/m.q:m.p;if(!k||p===null||!isFinite(p))continue;
    const y=yOf(p),x=k.x;ctx.fillStyle=m.buy?COLORS.buy:COLORS.sell;ctx.beginPath();
    if(m.buy){ctx.moveTo(x,y+1);ctx.lineTo(x-5,y+9);ctx.lineTo(x+5,y+9);}else{ctx.moveTo(x,y-1);ctx.lineTo(x-5,y-9);ctx.lineTo(x+5,y-9);}
    ctx.closePath();ctx.fill();ctx.stroke();stats.fillMarkers++;stats.fills+=m.n;}}
const RULE_COLORS={price_spike:'#d50000',volume_spike:'#6a1b9a',bad_tick:'#ff6d00',stale_feed:'#455a64'};
function pad(n){return n<10?'0'+n:String(n);}
function isoDate(d){return d.getUTCFullYear()+'-'+pad(d.getUTCMonth()+1)+'-'+pad(d.getUTCDate());}
function isoTime(ms){const d=new Date(ms);let s=isoDate(d)+' '+pad(d.getUTCHours())+':'+pad(d.getUTCMinutes())+':'+pad(d.getUTCSeconds());const r=ms%1000;if(r)s+='.'+String(r).padStart(3,'0');return s+'Z';}
function axisTime(ms,step,first){const d=new Date(ms);const hm=pad(d.getUTCHours())+':'+pad(d.getUTCMinutes());
  if(step>=864e5)return isoDate(d);
  const t=step<6e4?hm+':'+pad(d.getUTCSeconds()):hm;
  return (first||(d.getUTCHours()===0&&d.getUTCMinutes()===0&&d.getUTCSeconds()===0))?isoDate(d)+' '+t:t;}
function human(v){if(v===null||v===undefined||!isFinite(v))return '—';const a=Math.abs(v);
  if(a>=1e9)return (v/1e9).toFixed(2)+'B';if(a>=1e6)return (v/1e6).toFixed(2)+'M';if(a>=1e4)return (v/1e3).toFixed(1)+'k';
  if(a>=100)return v.toFixed(1);if(a>=1)return v.toFixed(3);if(a===0)return '0';return v.toPrecision(3);}
function niceTicks(lo,hi,count){const span=hi-lo;if(!(span>0))return [lo];const raw=span/count;const p=Math.pow(10,Math.floor(Math.log10(raw)));
  const step=[1,2,2.5,5,10].map(m=>m*p).find(s=>s>=raw);const out=[];for(let v=Math.ceil(lo/step)*step;v<=hi+1e-9*span;v+=step)out.push(v);return out;}
function tickText(v,ticks){const step=ticks.length>1?Math.abs(ticks[1]-ticks[0]):Math.abs(v);
  if(Math.abs(v)>=1e6&&step>=1e4)return human(v);const dec=Math.max(0,Math.min(8,-Math.floor(Math.log10(step||1))+1));return v.toFixed(step>=1?0:dec);}
// Time axis under a chart: DOM labels at round UTC times (the step chosen from the measured width of a
// label), each kept only if it clears the previous one by 10 px, so labels never overlap. t: start
// times (ms) of the drawn items, spanMs: the time one item covers, x of item i is xOf(i). Returns the
// number of labels placed.
function timeAxis(axis,ctx,t,spanMs,first,last,xOf,L,W,width,indexSpan){
  ctx.font='11px sans-serif';const n=t.length;const msPerBar=n>1?(t[last]-t[first])/Math.max(1,last-first):spanMs;
  const widest=ctx.measureText('2022-01-01 00:00:00').width;const pxPerMs=W/Math.max(1,indexSpan*msPerBar);
  let step=TIME_STEPS.find(st=>st*pxPerMs>=widest*0.6+12)||TIME_STEPS[TIME_STEPS.length-1];
  if(step<spanMs)step=TIME_STEPS.find(st=>st>=spanMs)||step;
  axis.style.width=width+'px';axis.innerHTML='';let right=-Infinity,prev=null,firstLabel=true,labels=0;
  for(let i=first;i<=last;i++){const bucket=Math.floor(t[i]/step);if(bucket===prev)continue;const isNew=prev!==null;prev=bucket;
    if(!isNew&&i>0&&Math.floor(t[i-1]/step)===bucket)continue;
    const x=xOf(i-0.5);if(x<L||x>L+W)continue;const text=axisTime(t[i],step,firstLabel);const w=ctx.measureText(text).width;
    if(x-w/2<Math.max(0,right+10)||x+w/2>L+W+60)continue;
    const label=document.createElement('span');label.className='xlabel';label.textContent=text;label.style.left=(x-w/2)+'px';axis.appendChild(label);
    const tick=document.createElement('i');tick.className='xtick';tick.style.left=Math.round(x)+'px';axis.appendChild(tick);
    right=x+w/2;firstLabel=false;labels++;}
  return labels;}
window.tapeCharts=[];
// Zoom buttons, wheel, drag to pan, hover and double-click, shared by the candle and tick charts.
function bindZoomPan(self,box){
  box.querySelector('.zin').addEventListener('click',()=>{self.zoomBy(0.5,0.5);});
  box.querySelector('.zout').addEventListener('click',()=>{self.zoomBy(2,0.5);});
  box.querySelector('.zall').addEventListener('click',()=>{self.zoomTo(0,self.s.t.length-1);});
  self.canvas.addEventListener('wheel',e=>{e.preventDefault();const r=self.canvas.getBoundingClientRect();
    const f=Math.max(0,Math.min(1,(e.clientX-r.left-self.L)/self.W));self.zoomBy(Math.pow(1.0015,e.deltaY),f);},{passive:false});
  let drag=null;
  self.canvas.addEventListener('mousedown',e=>{drag={x:e.clientX,i0:self.i0,i1:self.i1};});
  window.addEventListener('mouseup',()=>{drag=null;});
  window.addEventListener('mousemove',e=>{
    if(drag){const span=drag.i1-drag.i0;const d=(e.clientX-drag.x)/self.W*span;self.setView(drag.i0-d,drag.i1-d);self.request();return;}
    const r=self.canvas.getBoundingClientRect();if(e.clientY<r.top||e.clientY>r.bottom||e.clientX<r.left||e.clientX>r.right)return;
    self.hover(self.i0+(e.clientX-r.left-self.L)/self.W*(self.i1-self.i0)-0.5);});
  self.canvas.addEventListener('dblclick',()=>{self.zoomTo(0,self.s.t.length-1);});
  window.addEventListener('resize',()=>self.request());
}
function TapeChart(section){
  const self=this;this.section=section;this.idx=section.getAttribute('data-idx');
  this.canvas=section.querySelector('canvas.tape');this.axis=section.querySelector('.xaxis');this.info=section.querySelector('.info');
  this.ctx=this.canvas.getContext('2d');this.stats={};this.pending=false;
  this.select=section.querySelector('select');
  this.setSeries(this.select.value);
  this.select.addEventListener('change',()=>{self.setSeries(self.select.value);self.draw();});
  bindZoomPan(self,section);
  const table=section.querySelector('table.anoms');this.table=table;this.page=0;this.sortKey=0;this.sortDir=1;
  table.querySelectorAll('th').forEach((th,i)=>th.addEventListener('click',()=>{if(self.sortKey===i)self.sortDir=-self.sortDir;else{self.sortKey=i;self.sortDir=1;}self.page=0;self.renderTable();}));
  section.querySelector('.prev').addEventListener('click',()=>{self.page=Math.max(0,self.page-1);self.renderTable();});
  section.querySelector('.next').addEventListener('click',()=>{self.page++;self.renderTable();});
  section.querySelector('.inrange').addEventListener('change',()=>{self.page=0;self.renderTable();});
  window.tapeCharts.push(this);
}
TapeChart.prototype.setSeries=function(key){
  const s=SERIES[key];this.key=key;this.s=s;const n=s.t.length;const sym=key.split('|')[0];
  // anomalies of this symbol, each at the candle whose span holds its time
  this.anoms=ANOMS.filter(a=>a[0]===sym).map(a=>{let lo=0,hi=n;while(lo<hi){const m=(lo+hi)>>1;if(s.t[m]+s.span<=a[1])lo=m+1;else hi=m;}return {a:a,i:Math.min(lo,n-1)};});
  // predictions at the candle that starts at or before their bar end
  this.preds=[];
  if(s.pt){for(let j=0;j<s.pt.length;j++){const ms=Math.round(s.pt[j]/1e6);let lo=0,hi=n;while(lo<hi){const m=(lo+hi)>>1;if(s.t[m]<ms)lo=m+1;else hi=m;}this.preds.push(Math.max(0,lo-1));}}
  this.panels=[{name:'price',h:300},{name:'volume',h:70},{name:'rsi',h:80},{name:'macd',h:90}];
  if(s.pt)this.panels.push({name:'pred',h:100});
  this.section.querySelector('.agg').textContent=s.k>1?('Each stored candle merges '+s.k+' bars of '+s.tf+' (display only; bars.csv has every bar).'):'';
  this.setView(0,n-1);
};
TapeChart.prototype.setView=function(i0,i1){const n=this.s.t.length;let span=Math.max(Math.min(i1-i0,n),Math.min(n,10));
  let a=Math.max(-0.5,Math.min(i0,n-0.5-span));this.i0=a;this.i1=a+span;};
TapeChart.prototype.zoomTo=function(first,last){this.setView(first-0.5,last+0.5);this.draw();};
TapeChart.prototype.zoomBy=function(factor,f){const span=this.i1-this.i0,c=this.i0+f*span,ns=span*factor;this.setView(c-f*ns,c-f*ns+ns);this.request();};
TapeChart.prototype.request=function(){const self=this;if(this.pending)return;this.pending=true;requestAnimationFrame(()=>{self.pending=false;self.draw();});};
TapeChart.prototype.hover=function(x){const s=this.s,i=Math.round(x);if(i<0||i>=s.t.length)return;
  const v=(name)=>s[name]?human(s[name][i]):'—';
  this.info.textContent=isoTime(s.t[i])+'  O '+human(s.o[i])+'  H '+human(s.h[i])+'  L '+human(s.l[i])+'  C '+human(s.c[i])+'  V '+human(s.v[i])+
    '  SMA '+v('sma')+'  EMA '+v('ema')+'  RSI '+v('rsi')+'  MACD '+v('macd');};
TapeChart.prototype.draw=function(){
  const s=this.s,n=s.t.length,ctx=this.ctx,dpr=window.devicePixelRatio||1;
  const width=Math.max(600,this.section.clientWidth-4);let height=0;this.panels.forEach(p=>{height+=p.h+8;});
  this.canvas.style.width=width+'px';this.canvas.style.height=height+'px';
  if(this.canvas.width!==Math.round(width*dpr)||this.canvas.height!==Math.round(height*dpr)){this.canvas.width=Math.round(width*dpr);this.canvas.height=Math.round(height*dpr);}
  ctx.setTransform(dpr,0,0,dpr,0,0);ctx.fillStyle='#fff';ctx.fillRect(0,0,width,height);
  this.L=6;this.W=width-this.L-72;const L=this.L,W=this.W,i0=this.i0,i1=this.i1,span=i1-i0;
  const xOf=i=>L+(i-i0)/span*W;
  const first=Math.max(0,Math.floor(i0)),last=Math.min(n-1,Math.ceil(i1));
  // candles of g bars (aligned to multiples of g so that panning does not reshuffle them)
  const g=Math.max(1,Math.ceil((last-first+1)/(W/3)));
  const buckets=[];
  for(let b=Math.floor(first/g)*g;b<=last;b+=g){const e=Math.min(n-1,b+g-1);let hi=-Infinity,lo=Infinity,vol=0;
    for(let i=b;i<=e;i++){if(s.h[i]>hi)hi=s.h[i];if(s.l[i]<lo)lo=s.l[i];if(s.v[i]!==null)vol+=s.v[i];}
    buckets.push({b:b,e:e,x:xOf((b+e)/2),o:s.o[b],h:hi,l:lo,c:s.c[e],v:vol});}
  const bw=Math.max(1,W/span*g*0.7);
  let top=4;const stats={candles:buckets.length,indicatorPoints:0,markers:0,labels:0,barsPerCandle:g,fillMarkers:0,fills:0};
  const self=this;
  function yAxis(lo,hi,y0,h,fixed){const ticks=fixed||niceTicks(lo,hi,Math.max(2,Math.floor(h/30)));const yOf=v=>y0+h-(v-lo)/(hi-lo)*h;
    ctx.font='11px sans-serif';ctx.textBaseline='middle';ctx.textAlign='left';
    ticks.forEach(v=>{const y=yOf(v);if(y<y0-1||y>y0+h+1)return;ctx.strokeStyle=COLORS.grid;ctx.lineWidth=1;ctx.beginPath();ctx.moveTo(L,y);ctx.lineTo(L+W,y);ctx.stroke();
      ctx.fillStyle=COLORS.text;ctx.fillText(tickText(v,ticks),L+W+6,y);});return yOf;}
  function line(values,yOf,color,dash){ctx.strokeStyle=color;ctx.lineWidth=1.2;ctx.setLineDash(dash||[]);ctx.beginPath();let on=false;
    for(const k of buckets){const v=values[k.e];if(v===null||v===undefined||!isFinite(v)){on=false;continue;}const y=yOf(v);
      if(on)ctx.lineTo(k.x,y);else{ctx.moveTo(k.x,y);on=true;}stats.indicatorPoints++;}ctx.stroke();ctx.setLineDash([]);}
  function legend(items,y){ctx.font='11px sans-serif';ctx.textBaseline='top';ctx.textAlign='left';let x=L+4;
    items.forEach(([label,color])=>{ctx.fillStyle=color;ctx.fillRect(x,y+4,10,3);ctx.fillStyle=COLORS.text;ctx.fillText(label,x+13,y);x+=ctx.measureText(label).width+26;});}
  function clip(y0,h){ctx.save();ctx.beginPath();ctx.rect(L,y0,W,h);ctx.clip();}
  for(const p of this.panels){
    const y0=top,h=p.h;ctx.strokeStyle='#cfd8dc';ctx.lineWidth=1;ctx.strokeRect(L+0.5,y0+0.5,W,h);
    if(p.name==='price'){let lo=Infinity,hi=-Infinity;
      for(const k of buckets){if(k.l<lo)lo=k.l;if(k.h>hi)hi=k.h;for(const nm of ['bb_upper','bb_lower']){const v=s[nm][k.e];if(v!==null&&isFinite(v)){if(v<lo)lo=v;if(v>hi)hi=v;}}}
      if(!(hi>lo)){hi=lo+1;lo=lo-1;}const padding=(hi-lo)*0.06;lo-=padding;hi+=padding;
      const yOf=yAxis(lo,hi,y0,h);clip(y0,h);
      for(const k of buckets){const up=k.c>=k.o;ctx.strokeStyle=ctx.fillStyle=up?COLORS.up:COLORS.down;ctx.lineWidth=1;
        ctx.beginPath();ctx.moveTo(Math.round(k.x)+0.5,yOf(k.h));ctx.lineTo(Math.round(k.x)+0.5,yOf(k.l));ctx.stroke();
        const yt=yOf(Math.max(k.o,k.c)),yb=yOf(Math.min(k.o,k.c));ctx.fillRect(k.x-bw/2,yt,bw,Math.max(1,yb-yt));}
      line(s.bb_upper,yOf,COLORS.bb);line(s.bb_lower,yOf,COLORS.bb);line(s.bb_middle,yOf,COLORS.bb,[4,3]);
      line(s.sma,yOf,COLORS.sma);line(s.ema,yOf,COLORS.ema);
      const seen={};
      for(const m of this.anoms){if(m.i<first||m.i>last)continue;const b=Math.floor(m.i/g)*g;const key=b+'|'+m.a[2];if(seen[key])continue;seen[key]=1;
        const k=buckets[(b-buckets[0].b)/g];if(!k)continue;const y=yOf(k.h)-7;ctx.fillStyle=RULE_COLORS[m.a[2]]||'#000';
        ctx.beginPath();ctx.moveTo(k.x,y+4);ctx.lineTo(k.x-3.5,y-2);ctx.lineTo(k.x+3.5,y-2);ctx.closePath();ctx.fill();stats.markers++;}
      if(s.fx)drawFills(ctx,s,buckets,first,last,g,yOf,stats);
      ctx.restore();
      legend([[s.tf+' candles','#263238'],['SMA','#f39c12'],['EMA','#2962ff'],['Bollinger','#9e9e9e'],['price spike',RULE_COLORS.price_spike],['volume spike',RULE_COLORS.volume_spike]]
        .concat(s.fx?[['buy fill ▲',COLORS.buy],['sell fill ▼',COLORS.sell]]:[]),y0+2);
    } else if(p.name==='volume'){let hi=0;for(const k of buckets)if(k.v>hi)hi=k.v;const yOf=yAxis(0,hi||1,y0,h,[0,(hi||1)/2,hi||1].map(v=>Number(v.toPrecision(2))));clip(y0,h);
      for(const k of buckets){ctx.fillStyle=k.c>=k.o?'rgba(38,166,154,0.6)':'rgba(239,83,80,0.6)';const y=yOf(k.v);ctx.fillRect(k.x-bw/2,y,bw,y0+h-y);}
      ctx.restore();legend([['volume','#90a4ae']],y0+2);
    } else if(p.name==='rsi'){const yOf=yAxis(0,100,y0,h,[30,50,70]);clip(y0,h);line(s.rsi,yOf,COLORS.rsi);ctx.restore();legend([['RSI','#7e57c2']],y0+2);
    } else if(p.name==='macd'){let lo=Infinity,hi=-Infinity;for(const k of buckets)for(const nm of ['macd','macd_signal','macd_hist']){const v=s[nm][k.e];if(v!==null&&isFinite(v)){if(v<lo)lo=v;if(v>hi)hi=v;}}
      if(!(hi>lo)){lo=-1;hi=1;}const yOf=yAxis(lo,hi,y0,h);clip(y0,h);
      for(const k of buckets){const v=s.macd_hist[k.e];if(v===null||!isFinite(v))continue;ctx.fillStyle=v>=0?'rgba(38,166,154,0.5)':'rgba(239,83,80,0.5)';const y=yOf(v),z=yOf(0);ctx.fillRect(k.x-bw/2,Math.min(y,z),bw,Math.abs(z-y));}
      line(s.macd,yOf,COLORS.macd);line(s.macd_signal,yOf,COLORS.signal);ctx.restore();legend([['MACD','#2962ff'],['signal','#ef6c00'],['histogram','#b0bec5']],y0+2);
    } else if(p.name==='pred'){let lo=Infinity,hi=-Infinity;const pts=[];
      for(let j=0;j<this.preds.length;j++){const i=this.preds[j];if(i<first||i>last)continue;pts.push(j);for(const v of [s.pred[j],s.real[j]])if(v!==null&&isFinite(v)){if(v<lo)lo=v;if(v>hi)hi=v;}}
      if(!(hi>lo)){lo=-1e-3;hi=1e-3;}const yOf=yAxis(lo,hi,y0,h);clip(y0,h);
      const step=Math.max(1,Math.ceil(pts.length/(W/2)));
      for(const [arr,color] of [[s.real,COLORS.real],[s.pred,COLORS.pred]]){ctx.strokeStyle=color;ctx.lineWidth=1;ctx.beginPath();let on=false;
        for(let q=0;q<pts.length;q+=step){const j=pts[q],v=arr[j];if(v===null||!isFinite(v)){on=false;continue;}const x=xOf(this.preds[j]),y=yOf(v);if(on)ctx.lineTo(x,y);else{ctx.moveTo(x,y);on=true;}stats.indicatorPoints++;}ctx.stroke();}
      ctx.restore();legend([['realised log return','#90a4ae'],['prediction','#d35400']],y0+2);}
    top+=h+8;}
  stats.labels=timeAxis(this.axis,ctx,s.t,s.span,first,last,xOf,L,W,width,span);
  this.section.querySelector('.range').textContent=isoTime(s.t[first])+' — '+isoTime(s.t[last]+s.span)+'  ('+(last-first+1)+' candles of '+s.tf+(g>1?', drawn '+g+' per candle':'')+
    (s.fx?'; '+stats.fills+' fills':'')+')';
  this.stats=stats;this.renderTable();};
TapeChart.prototype.renderTable=function(){
  const s=this.s,first=Math.max(0,Math.floor(this.i0)),last=Math.min(s.t.length-1,Math.ceil(this.i1));
  const inRange=this.section.querySelector('.inrange').checked;const t0=s.t[first],t1=s.t[last]+s.span;
  let rows=this.anoms.map(m=>m.a).filter(a=>!inRange||(a[1]>=t0&&a[1]<t1));
  const k=this.sortKey+1,dir=this.sortDir;rows=rows.slice().sort((a,b)=>(a[k]<b[k]?-1:a[k]>b[k]?1:0)*dir);
  const per=20,pages=Math.max(1,Math.ceil(rows.length/per));this.page=Math.min(this.page,pages-1);
  const body=this.table.tBodies[0];body.innerHTML='';
  rows.slice(this.page*per,this.page*per+per).forEach(a=>{const tr=body.insertRow();[isoTime(a[1]),a[2],human(a[3]),human(a[4]),a[5]].forEach(v=>{tr.insertCell().textContent=v;});});
  this.table.querySelectorAll('th').forEach((th,i)=>{th.setAttribute('data-sort',i===this.sortKey?(this.sortDir>0?'asc':'desc'):'');});
  this.section.querySelector('.pageinfo').textContent=rows.length+' anomalies'+(inRange?' in the shown range':'')+' — page '+(this.page+1)+' of '+pages;};
let created=0;
document.querySelectorAll('section.sym').forEach(sec=>{const c=new TapeChart(sec);c.draw();created++;});
"""#
    /// The tick view of captures (`TICKS`, from `tick_series.csv`): per symbol, one canvas with a price
    /// panel (each bucket's trade range low–high as a vertical stroke, the last trade price as a line with
    /// dots when there is room, the bid–ask band of the last quotes shaded over the faint envelope of the
    /// lowest bid and highest ask), a spread panel (highest spread as a light area, last spread as a line)
    /// and a count panel (trades and quotes per bucket). The visible buckets are merged into groups at
    /// least 2 px wide (counts summed, trade range and envelope widened, last values kept), so a capture of
    /// any length is drawn at every zoom level. Zoom, pan, hover and the time axis are the price chart's
    /// (`timeAxis`). Every tick view is in `window.tickCharts` with `zoomTo(first, last)`, `draw()` and
    /// `stats` ({groups, tradePoints, bandPoints, labels}).
    static let ticks = #"""
window.tickCharts=[];
function TickChart(box){
  const self=this;this.section=box;this.sym=box.getAttribute('data-sym');this.s=TICKS[this.sym];
  this.canvas=box.querySelector('canvas');this.axis=box.querySelector('.xaxis');this.info=box.querySelector('.info');
  this.ctx=this.canvas.getContext('2d');this.stats={};this.pending=false;
  this.panels=[{name:'price',h:260},{name:'spread',h:70},{name:'count',h:80}];
  bindZoomPan(self,box);
  this.setView(0,this.s.t.length-1);
  window.tickCharts.push(this);
}
TickChart.prototype.setView=TapeChart.prototype.setView;
TickChart.prototype.zoomTo=TapeChart.prototype.zoomTo;
TickChart.prototype.zoomBy=TapeChart.prototype.zoomBy;
TickChart.prototype.request=TapeChart.prototype.request;
function msText(ms){return ms>=6e4?human(ms/6e4)+' min':ms>=1e3?human(ms/1e3)+' s':ms+' ms';}
TickChart.prototype.hover=function(x){const s=this.s,i=Math.round(x);if(i<0||i>=s.t.length)return;
  const spread=(s.ac[i]!==null&&s.bc[i]!==null)?s.ac[i]-s.bc[i]:null;
  this.info.textContent=isoTime(s.t[i])+' +'+msText(s.w)+'  trades '+s.n[i]+(s.n[i]>0?('  vol '+human(s.v[i])+'  first '+human(s.pf[i])+'  low '+human(s.pl[i])+
    '  high '+human(s.ph[i])+'  last '+human(s.pc[i])):'')+'  quotes '+s.q[i]+'  bid '+human(s.bc[i])+'  ask '+human(s.ac[i])+'  spread '+human(spread);};
TickChart.prototype.draw=function(){
  const s=this.s,n=s.t.length,ctx=this.ctx,dpr=window.devicePixelRatio||1;
  const width=Math.max(600,this.section.clientWidth-4);let height=0;this.panels.forEach(p=>{height+=p.h+8;});
  this.canvas.style.width=width+'px';this.canvas.style.height=height+'px';
  if(this.canvas.width!==Math.round(width*dpr)||this.canvas.height!==Math.round(height*dpr)){this.canvas.width=Math.round(width*dpr);this.canvas.height=Math.round(height*dpr);}
  ctx.setTransform(dpr,0,0,dpr,0,0);ctx.fillStyle='#fff';ctx.fillRect(0,0,width,height);
  this.L=6;this.W=width-this.L-72;const L=this.L,W=this.W,i0=this.i0,i1=this.i1,span=i1-i0;
  const xOf=i=>L+(i-i0)/span*W;
  const first=Math.max(0,Math.floor(i0)),last=Math.min(n-1,Math.ceil(i1));
  // groups of g buckets (aligned to multiples of g so that panning does not reshuffle them)
  const g=Math.max(1,Math.ceil((last-first+1)/(W/2)));const gw=W/span*g;
  const ok=v=>v!==null&&v!==undefined&&isFinite(v);
  const groups=[];
  for(let b=Math.floor(first/g)*g;b<=last;b+=g){const e=Math.min(n-1,b+g-1);
    const k={x:xOf((b+e)/2),n:0,q:0,pl:Infinity,ph:-Infinity,pc:null,bl:Infinity,ah:-Infinity,bc:null,ac:null,sh:-Infinity};
    for(let i=b;i<=e;i++){k.n+=s.n[i];k.q+=s.q[i];
      if(s.n[i]>0){if(s.pl[i]<k.pl)k.pl=s.pl[i];if(s.ph[i]>k.ph)k.ph=s.ph[i];k.pc=s.pc[i];}
      if(ok(s.bl[i])&&s.bl[i]<k.bl)k.bl=s.bl[i];if(ok(s.ah[i])&&s.ah[i]>k.ah)k.ah=s.ah[i];
      if(ok(s.bc[i]))k.bc=s.bc[i];if(ok(s.ac[i]))k.ac=s.ac[i];if(ok(s.sh[i])&&s.sh[i]>k.sh)k.sh=s.sh[i];}
    groups.push(k);}
  let top=4;const stats={groups:groups.length,tradePoints:0,bandPoints:0,labels:0,bucketsPerGroup:g};
  function yAxis(lo,hi,y0,h,fixed){const ticks=fixed||niceTicks(lo,hi,Math.max(2,Math.floor(h/30)));const yOf=v=>y0+h-(v-lo)/(hi-lo)*h;
    ctx.font='11px sans-serif';ctx.textBaseline='middle';ctx.textAlign='left';
    ticks.forEach(v=>{const y=yOf(v);if(y<y0-1||y>y0+h+1)return;ctx.strokeStyle=COLORS.grid;ctx.lineWidth=1;ctx.beginPath();ctx.moveTo(L,y);ctx.lineTo(L+W,y);ctx.stroke();
      ctx.fillStyle=COLORS.text;ctx.fillText(tickText(v,ticks),L+W+6,y);});return yOf;}
  function legend(items,y){ctx.font='11px sans-serif';ctx.textBaseline='top';ctx.textAlign='left';let x=L+4;
    items.forEach(([label,color])=>{ctx.fillStyle=color;ctx.fillRect(x,y+4,10,3);ctx.fillStyle=COLORS.text;ctx.fillText(label,x+13,y);x+=ctx.measureText(label).width+26;});}
  function clip(y0,h){ctx.save();ctx.beginPath();ctx.rect(L,y0,W,h);ctx.clip();}
  function polyline(key,yOf,color,counter){ctx.strokeStyle=color;ctx.lineWidth=1.2;ctx.beginPath();let on=false;
    for(const k of groups){const v=k[key];if(!ok(v)){on=false;continue;}const y=yOf(v);if(on)ctx.lineTo(k.x,y);else{ctx.moveTo(k.x,y);on=true;}if(counter)stats[counter]++;}ctx.stroke();}
  const per=msText(s.w*g);
  for(const p of this.panels){
    const y0=top,h=p.h;ctx.strokeStyle='#cfd8dc';ctx.lineWidth=1;ctx.strokeRect(L+0.5,y0+0.5,W,h);
    if(p.name==='price'){let lo=Infinity,hi=-Infinity;
      for(const k of groups){for(const v of [k.pl,k.bl])if(isFinite(v)&&v<lo)lo=v;for(const v of [k.ph,k.ah])if(isFinite(v)&&v>hi)hi=v;}
      if(!(hi>lo)){if(!isFinite(lo)){lo=0;hi=1;}else{hi=lo+1;lo=lo-1;}}const padding=(hi-lo)*0.06;lo-=padding;hi+=padding;
      const yOf=yAxis(lo,hi,y0,h);clip(y0,h);
      ctx.fillStyle='rgba(41,98,255,0.07)';
      for(const k of groups){if(isFinite(k.bl)&&isFinite(k.ah)){const yt=yOf(k.ah);ctx.fillRect(k.x-gw/2,yt,gw,Math.max(1,yOf(k.bl)-yt));}}
      ctx.fillStyle='rgba(41,98,255,0.25)';
      for(const k of groups){if(ok(k.bc)&&ok(k.ac)){const yt=yOf(k.ac);ctx.fillRect(k.x-gw/2,yt,gw,Math.max(1,yOf(k.bc)-yt));stats.bandPoints++;}}
      polyline('bc',yOf,'#26a69a');polyline('ac',yOf,'#ef5350');
      ctx.strokeStyle='#263238';ctx.lineWidth=1;
      for(const k of groups){if(k.n>0){ctx.beginPath();ctx.moveTo(Math.round(k.x)+0.5,yOf(k.ph)-0.5);ctx.lineTo(Math.round(k.x)+0.5,yOf(k.pl)+0.5);ctx.stroke();}}
      polyline('pc',yOf,'#263238','tradePoints');
      if(gw>=4){ctx.fillStyle='#263238';for(const k of groups){if(ok(k.pc)){ctx.beginPath();ctx.arc(k.x,yOf(k.pc),1.8,0,2*Math.PI);ctx.fill();}}}
      ctx.restore();
      legend([['last trade price (stroke: low–high per '+per+')','#263238'],['bid','#26a69a'],['ask','#ef5350'],['bid–ask band','rgba(41,98,255,0.4)']],y0+2);
    } else if(p.name==='spread'){let hi=0;for(const k of groups){if(isFinite(k.sh)&&k.sh>hi)hi=k.sh;}
      // 15% headroom: no label on the panel's top edge, next to the panel above's zero
      const top_=(hi||1)*1.15;const yOf=yAxis(0,top_,y0,h,niceTicks(0,top_,2));clip(y0,h);
      ctx.fillStyle='rgba(239,108,0,0.25)';for(const k of groups){if(isFinite(k.sh)){const y=yOf(k.sh);ctx.fillRect(k.x-gw/2,y,gw,y0+h-y);}}
      for(const k of groups)k.spread=(ok(k.ac)&&ok(k.bc))?k.ac-k.bc:null;
      polyline('spread',yOf,'#ef6c00');ctx.restore();legend([['spread (last)','#ef6c00'],['highest spread per '+per,'rgba(239,108,0,0.5)']],y0+2);
    } else if(p.name==='count'){let hi=0;for(const k of groups){if(k.n>hi)hi=k.n;if(k.q>hi)hi=k.q;}
      const top_=(hi||1)*1.15;const yOf=yAxis(0,top_,y0,h,niceTicks(0,top_,2));clip(y0,h);const bw=Math.max(1,gw*0.45);
      for(const k of groups){ctx.fillStyle='rgba(38,166,154,0.8)';let y=yOf(k.n);ctx.fillRect(k.x-bw,y,bw,y0+h-y);
        ctx.fillStyle='rgba(126,87,194,0.6)';y=yOf(k.q);ctx.fillRect(k.x,y,bw,y0+h-y);}
      ctx.restore();legend([['trades per '+per,'#26a69a'],['quotes per '+per,'#7e57c2']],y0+2);}
    top+=h+8;}
  stats.labels=timeAxis(this.axis,ctx,s.t,s.w,first,last,xOf,L,W,width,span);
  let trades=0,quotes=0;for(let i=first;i<=last;i++){trades+=s.n[i];quotes+=s.q[i];}
  this.section.querySelector('.range').textContent=isoTime(s.t[first])+' — '+isoTime(s.t[last]+s.w)+'  ('+(last-first+1)+' buckets of '+msText(s.w)+
    (g>1?', drawn '+g+' per group':'')+'; '+trades+' trades, '+quotes+' quotes)';
  this.stats=stats;};
document.querySelectorAll('div.tickview').forEach(box=>{const c=new TickChart(box);c.draw();created++;});
"""#
    /// The backtest's equity and drawdown chart (`BACKTEST`, from equity.csv's total rows: `ReportBacktest`): an
    /// equity panel (the line of each point's last equity over the band of its lowest and highest when a point
    /// merges several marks, the initial cash dashed) and a drawdown panel (1 − equity / running peak as a
    /// filled area, 0 at the top). The visible points are merged into groups at least 2 px wide (last equity,
    /// lowest, highest, deepest drawdown), so a run of any length is drawn at every zoom level. Zoom, pan, hover
    /// and the time axis are the price chart's. The chart is `window.backtestChart` with `zoomTo(first, last)`,
    /// `draw()` and `stats` ({points, labels, maxDrawdown}).
    static let backtest = #"""
function percentText(v){if(v===null||!isFinite(v))return '—';const p=v*100;return (p!==0&&Math.abs(p)<0.01?p.toPrecision(3):p.toFixed(2))+' %';}
function moneyText(v){return v===null||!isFinite(v)?'—':v.toLocaleString('en-US',{minimumFractionDigits:2,maximumFractionDigits:2});}
// Horizontal grid lines and right-hand labels of a panel; returns the value → y function.
function panelAxis(ctx,L,W,lo,hi,y0,h,ticks,format){const yOf=v=>y0+h-(v-lo)/(hi-lo)*h;
  ctx.font='11px sans-serif';ctx.textBaseline='middle';ctx.textAlign='left';
  ticks.forEach(v=>{const y=yOf(v);if(y<y0-1||y>y0+h+1)return;ctx.strokeStyle=COLORS.grid;ctx.lineWidth=1;ctx.beginPath();ctx.moveTo(L,y);ctx.lineTo(L+W,y);ctx.stroke();
    ctx.fillStyle=COLORS.text;ctx.fillText(format(v,ticks),L+W+6,y);});return yOf;}
function BacktestChart(box){
  const self=this;this.section=box;this.s=BACKTEST;
  this.canvas=box.querySelector('canvas.equity');this.axis=box.querySelector('.xaxis');this.info=box.querySelector('.info');
  this.ctx=this.canvas.getContext('2d');this.stats={};this.pending=false;
  this.panels=[{name:'equity',h:230},{name:'drawdown',h:110}];
  bindZoomPan(self,box);
  this.setView(0,this.s.t.length-1);
  window.backtestChart=this;
}
BacktestChart.prototype.setView=TapeChart.prototype.setView;
BacktestChart.prototype.zoomTo=TapeChart.prototype.zoomTo;
BacktestChart.prototype.zoomBy=TapeChart.prototype.zoomBy;
BacktestChart.prototype.request=TapeChart.prototype.request;
BacktestChart.prototype.hover=function(x){const s=this.s,i=Math.round(x);if(i<0||i>=s.t.length)return;
  this.info.textContent=isoTime(s.t[i])+'  equity '+moneyText(s.e[i])+(s.k>1?'  (lowest '+moneyText(s.lo[i])+', highest '+moneyText(s.hi[i])+' of '+s.k+' marks)':'')+
    '  drawdown '+percentText(s.dd[i])+'  return '+percentText(s.e[i]/s.cash-1);};
BacktestChart.prototype.draw=function(){
  const s=this.s,n=s.t.length,ctx=this.ctx,dpr=window.devicePixelRatio||1;
  const width=Math.max(600,this.section.clientWidth-4);let height=0;this.panels.forEach(p=>{height+=p.h+8;});
  this.canvas.style.width=width+'px';this.canvas.style.height=height+'px';
  if(this.canvas.width!==Math.round(width*dpr)||this.canvas.height!==Math.round(height*dpr)){this.canvas.width=Math.round(width*dpr);this.canvas.height=Math.round(height*dpr);}
  ctx.setTransform(dpr,0,0,dpr,0,0);ctx.fillStyle='#fff';ctx.fillRect(0,0,width,height);
  this.L=6;this.W=width-this.L-84;const L=this.L,W=this.W,i0=this.i0,i1=this.i1,span=i1-i0;
  const xOf=i=>L+(i-i0)/span*W;
  const first=Math.max(0,Math.floor(i0)),last=Math.min(n-1,Math.ceil(i1));
  const g=Math.max(1,Math.ceil((last-first+1)/(W/2)));
  const groups=[];
  for(let b=Math.floor(first/g)*g;b<=last;b+=g){const e=Math.min(n-1,b+g-1);const k={x:xOf((b+e)/2),e:s.e[e],lo:Infinity,hi:-Infinity,dd:0};
    for(let i=b;i<=e;i++){if(s.lo[i]<k.lo)k.lo=s.lo[i];if(s.hi[i]>k.hi)k.hi=s.hi[i];if(s.dd[i]>k.dd)k.dd=s.dd[i];}groups.push(k);}
  const gw=W/span*g;let top=4;const stats={points:groups.length,labels:0,maxDrawdown:0};
  function legend(items,y){ctx.font='11px sans-serif';ctx.textBaseline='top';ctx.textAlign='left';let x=L+4;
    items.forEach(([label,color])=>{ctx.fillStyle=color;ctx.fillRect(x,y+4,10,3);ctx.fillStyle=COLORS.text;ctx.fillText(label,x+13,y);x+=ctx.measureText(label).width+26;});}
  function clip(y0,h){ctx.save();ctx.beginPath();ctx.rect(L,y0,W,h);ctx.clip();}
  for(const p of this.panels){
    const y0=top,h=p.h;ctx.strokeStyle='#cfd8dc';ctx.lineWidth=1;ctx.strokeRect(L+0.5,y0+0.5,W,h);
    if(p.name==='equity'){let lo=s.cash,hi=s.cash;for(const k of groups){if(k.lo<lo)lo=k.lo;if(k.hi>hi)hi=k.hi;}
      if(!(hi>lo)){hi=lo+1;lo=lo-1;}const padding=(hi-lo)*0.08;lo-=padding;hi+=padding;
      const ticks=niceTicks(lo,hi,Math.max(2,Math.floor(h/35)));const yOf=panelAxis(ctx,L,W,lo,hi,y0,h,ticks,tickText);clip(y0,h);
      ctx.strokeStyle='#90a4ae';ctx.setLineDash([5,4]);ctx.beginPath();ctx.moveTo(L,yOf(s.cash));ctx.lineTo(L+W,yOf(s.cash));ctx.stroke();ctx.setLineDash([]);
      ctx.fillStyle='rgba(21,101,192,0.18)';
      for(const k of groups){if(k.hi>k.lo){const yt=yOf(k.hi);ctx.fillRect(k.x-gw/2,yt,gw,Math.max(1,yOf(k.lo)-yt));}}
      ctx.strokeStyle=COLORS.buy;ctx.lineWidth=1.4;ctx.beginPath();groups.forEach((k,j)=>{const y=yOf(k.e);if(j)ctx.lineTo(k.x,y);else ctx.moveTo(k.x,y);});ctx.stroke();
      ctx.restore();legend([['total equity','#1565c0'],['initial cash','#90a4ae']].concat(s.k*g>1?[['lowest–highest per point','rgba(21,101,192,0.4)']]:[]),y0+2);
    } else if(p.name==='drawdown'){let hi=0;for(const k of groups)if(k.dd>hi)hi=k.dd;stats.maxDrawdown=hi;const top_=(hi||1e-4)*1.15;
      // 0 at the top, deeper drawdowns lower
      const ticks=niceTicks(0,top_,3);const yOf=panelAxis(ctx,L,W,top_,0,y0,h,ticks,v=>v===0?'0 %':'−'+tickText(v*100,ticks.map(t=>t*100))+' %');
      clip(y0,h);ctx.fillStyle='rgba(213,0,0,0.25)';ctx.strokeStyle='#c62828';ctx.lineWidth=1.2;
      ctx.beginPath();ctx.moveTo(groups[0].x-gw/2,yOf(0));for(const k of groups)ctx.lineTo(k.x,yOf(k.dd));ctx.lineTo(groups[groups.length-1].x+gw/2,yOf(0));ctx.closePath();ctx.fill();
      ctx.beginPath();groups.forEach((k,j)=>{const y=yOf(k.dd);if(j)ctx.lineTo(k.x,y);else ctx.moveTo(k.x,y);});ctx.stroke();
      ctx.restore();legend([['drawdown 1 − equity / peak (deepest per point)','#c62828']],y0+2);}
    top+=h+8;}
  stats.labels=timeAxis(this.axis,ctx,s.t,s.span,first,last,xOf,L,W,width,span);
  this.section.querySelector('.range').textContent=isoTime(s.t[first])+' — '+isoTime(s.t[last])+'  ('+(last-first+1)+' points'+
    (s.k>1?' of '+s.k+' marks':'')+(g>1?', drawn '+g+' per point':'')+'; max drawdown shown '+percentText(stats.maxDrawdown)+')';
  this.stats=stats;};
if(BACKTEST){const c=new BacktestChart(document.querySelector('section.backtest .btchart'));c.draw();created++;}
"""#
}
