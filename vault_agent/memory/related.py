"""The built-in related-terms table that lets lexical search find notes written in other words.

Each line is one group of words people use for the same thing in a
personal-assistant or small-business memory (English). A query word found in
a group brings the group's other words into the query at a lower weight
(query.py). Lookup is by the index's own stem (FTS5 porter), so "invoices",
"invoicing" and "invoice" find the same groups. Keep groups tight: a loose group turns every
query into noise.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from functools import lru_cache

GROUPS = """
invoice bill billing receipt payment charge
pay paid payment salary wage wages income earnings compensation payout
price pricing cost costs fee fees rate rates charge tariff quote
money cash funds budget spending expense expenses spend bank savings
tax taxes vat btw irs hmrc fiscal
accountant bookkeeper bookkeeping accounting accounts cpa auditor tax taxes
bank account iban transfer wire
loan mortgage debt credit
refund reimbursement reimburse repay
discount reduction sale deal
subscription plan membership renewal
contract agreement deal terms signature signed nda
client customer buyer patron
vendor supplier provider contractor freelancer
boss manager supervisor lead head director
colleague coworker teammate peer
employee staff hire hiring recruit recruiting recruitment candidate applicant interview
job role position career work employment occupation
meeting call sync standup catchup appointment session
appointment booking reservation slot
schedule calendar agenda timetable planner
deadline due cutoff duedate
date day time when
morning am breakfast dawn early
evening night pm dinner late
weekend saturday sunday
week weekly
month monthly
year yearly annual annually
quarter quarterly
daily everyday day
today tonight now
tomorrow next upcoming soon
yesterday previous last past prior
holiday vacation leave break trip getaway pto
travel trip journey flight flights fly flying airline airport plane
train rail railway station
car vehicle auto drive driving automobile
bike bicycle cycling cycle
bus coach transit commute commuting
hotel accommodation lodging stay airbnb hostel
passport visa id identity document
luggage baggage suitcase bag
doctor physician gp clinic medical practitioner
dentist dental teeth tooth orthodontist
hospital clinic surgery emergency
medicine medication pill pills prescription drug dose antibiotic antibiotics penicillin
allergy allergic intolerance intolerant sensitivity
health wellness fitness wellbeing
exercise workout gym training run running jog jogging swim swimming yoga
diet food eating meal meals nutrition
vegetarian vegan plant meat
coffee espresso latte cappuccino caffeine cafe
tea chai matcha
wine beer alcohol drink drinks drinking
lunch midday noon meal
restaurant cafe bistro diner eatery
cook cooking recipe kitchen bake baking
birthday anniversary celebration party
gift present
wife husband spouse partner
son daughter child children kid kids
mother mom mum father dad parent parents
brother sister sibling siblings
friend friends buddy pal
family relatives household
pet dog cat puppy kitten vet veterinarian
house home apartment flat residence place
rent lease landlord tenant
address location street postcode zip
move moving relocate relocation
repair fix maintenance broken
plumber plumbing leak pipe
electrician electrical wiring power
internet wifi broadband network router connection online
phone mobile cell smartphone telephone
email mail inbox message messages
message text sms chat whatsapp signal slack
letter post postal mail parcel package delivery shipping
laptop computer pc macbook notebook machine
password credentials login passphrase secret
backup backups archive snapshot copy
server hosting host cloud aws vps
website site webpage homepage domain web
app application software program tool tools
bug defect issue error fault problem crash
release ship launch deploy deployment rollout
code repository repo codebase source github gitlab
test tests testing qa
database db sql postgres sqlite
document doc docs file files paperwork
report summary overview digest recap brief
presentation slides deck keynote pitch
draft sketch outline proposal
design designer layout mockup wireframe figma
logo brand branding identity
photo photos picture pictures image images photography camera
video film footage recording
music song songs playlist band concert
book books novel reading read author
podcast episode show
newsletter bulletin mailing
social instagram twitter linkedin facebook
marketing promotion advertising ads campaign
sales revenue turnover income
profit margin earnings
goal goals objective target aim plan
project initiative venture job engagement
task todo chore action
priority urgent important critical asap
problem issue trouble concern difficulty
risk danger threat hazard
decision decide decided choose chose chosen agreed agree settled resolve resolved
prefer preference preferred favorite favourite like likes love loves enjoy
dislike dislikes hate hates avoid avoids
always every each
rule policy guideline convention standard
feedback critique review comment comments notes
approve approval approved signoff sign permission
reject rejected decline declined refuse refused
cancel cancelled canceled cancellation
postpone postponed delay delayed reschedule rescheduled
remind reminder reminders alert notification
start begin kickoff kick commence
finish end complete completed done wrap
handoff hand handover deliver delivery deliverable deliverables
language english dutch french german spanish japanese
translate translation translator
speak speaking talk talking conversation
write writing written writer
short brief concise terse succinct
long lengthy detailed verbose
formal polite professional
casual informal relaxed
friendly warm kind
tone voice style
font typeface typography
color colour palette
size dimension dimensions measurement
weight weigh kg pounds
height tall
temperature heat heating thermostat
cold winter snow
hot summer heat
rain weather forecast
garden plants plant flowers lawn
insurance policy coverage cover covers insurer premium liability
lawyer attorney legal solicitor counsel
court lawsuit litigation dispute sue sues sued
license licence permit
school class classes course courses lesson lessons tutor teacher
university college degree study studying student
exam exams test grade grades
workshop seminar training course
conference summit event expo fair exhibition exhibit booth tradeshow
speaker talk keynote presentation
ticket tickets pass entry
office workspace desk studio coworking
remote home wfh distance
hours timezone time zone
wake sleep bedtime asleep
nap rest tired
stress stressed anxious anxiety burnout
happy glad pleased
sad unhappy upset
angry annoyed frustrated
quiet silence silent noise noisy
open opens opening
closed close closes closing shut
neighbor neighbour neighbours neighbors
child kid toddler baby
school pickup dropoff
grocery groceries supermarket shopping shop store
clothes clothing shirt shoes dress jacket
size fit measurements
account profile username handle
subscription streaming netflix spotify
tv television screen monitor display
key keys lock locks door
parking park garage
fuel gas petrol diesel charging charger ev
ferry boat ship
north south east west
buy purchase order get acquire
sell sold selling
send sent mail post forward dispatch
receive received get got arrive arrives arrival
reply respond response answer answered
ask question query enquire inquire
tell inform notify let know
write compose draft author
read review look go through
fix repair mend resolve
start begin launch kick off open
stop end halt quit cease
cancel call off drop scrap
change modify alter update edit adjust
create make build produce
delete remove erase discard
find locate search look
keep store save retain hold
give hand provide supply
show display present demonstrate
meet see visit
call phone ring dial
wait hold pause
plan prepare arrange organise organize
decide choose pick select opt
agree accept approve consent
refuse decline reject deny
help assist aid support
pay settle reimburse
owe debt outstanding overdue unpaid
borrow lend loan
rent hire lease
travel go trip visit journey
leave depart exit
return come back back
move relocate shift
live reside stay dwell
work job labour labor employment
rest relax break recover
eat dine meal food
drink beverage sip
cook prepare bake grill roast
clean tidy wash scrub
wear dress outfit clothes
buy shop shopping
learn study practise practice train
teach coach tutor instruct mentor
sleep nap rest bed
wake up rise
walk stroll hike wander
run jog sprint
drive ride commute
fly flight plane airline
sail boat ferry cruise
book reserve schedule
remember recall remind memory
forget forgot forgotten
worry concern anxious nervous
enjoy like love appreciate
hate dislike detest loathe
need require must necessary
want wish desire would like
try attempt test
allow permit let authorize
forbid prohibit ban block
check verify confirm inspect review
compare contrast versus
estimate guess approximate
measure size dimension
count number total sum amount quantity
increase raise grow rise higher more
decrease reduce cut lower less fewer drop
fast quick rapid speedy urgent
slow late delayed behind
early ahead soon before
big large huge major
small little tiny minor
new fresh recent latest
old previous former earlier past
good great fine excellent
bad poor terrible awful
easy simple straightforward
hard difficult tough complex
cheap inexpensive affordable budget
expensive costly pricey premium
important key critical essential major
problem issue trouble bug fault
idea concept thought suggestion proposal
goal aim target objective
result outcome effect consequence
reason cause why because
rule policy guideline standard principle
habit routine ritual custom
preference taste choice
opinion view thought feedback
question query doubt
answer reply solution
list overview inventory catalogue catalog
note memo reminder record
file document paper form
folder directory drive
photo picture image snapshot shot
album photobook collection
picture drawing illustration artwork
song track music tune
movie film cinema
show series programme program episode
game match play
team group crew squad
company firm business agency studio
shop store boutique outlet
office workplace workspace
home house flat apartment residence
room bedroom kitchen bathroom living
garden yard backyard
street road avenue lane
city town place
neighbourhood neighborhood district area quarter
country nation state
weather rain sun snow wind forecast
season spring summer autumn fall winter
holiday vacation break leave
weekend saturday sunday
weekday workday
birthday anniversary celebration
party celebration gathering event
wedding marriage ceremony
guest visitor attendee
friend pal buddy acquaintance
family relatives kin
parent mother father
child kid son daughter baby
partner spouse husband wife boyfriend girlfriend
doctor physician gp medic specialist
nurse carer caregiver
dentist dental orthodontist hygienist
optician optometrist glasses spectacles specs eyewear lenses contacts
pharmacy chemist drugstore medicine
hospital clinic ward emergency
illness sickness disease condition
injury hurt wound sprain
pain ache sore
exercise workout training fitness
sport sports game
music instrument piano guitar violin drums keyboard
lesson class course training
teacher tutor instructor coach
student pupil learner
school academy college university
exam test assessment
grade mark score
bill invoice statement
receipt proof voucher
contract agreement deal
insurance cover policy
tax taxes vat duty levy
salary wage pay income
price cost fee charge rate
discount reduction offer deal sale
budget allowance limit cap
savings reserve fund
account profile login
password passcode pin code
key keys fob
lock locked locksmith
door gate entrance
car vehicle auto
bike bicycle cycle
bus tram metro train transit
taxi cab uber ride
parking garage spot
fuel petrol gas diesel charging
phone mobile smartphone cell
computer laptop pc desktop
screen monitor display
printer scanner copier
cable charger adapter
internet wifi network connection online
email mail message inbox
website site page homepage
app application software tool program
account subscription membership plan
delivery shipment package parcel courier
order purchase
return refund exchange
supplier vendor provider
client customer
boss manager lead head
colleague coworker teammate
employee staff worker hire
assistant helper aide intern
freelancer contractor consultant
lawyer attorney solicitor legal
accountant bookkeeper accounting
bank banking finance
meeting appointment session call
agenda topics points items
minutes notes summary recap
presentation talk speech keynote
conference summit convention event
trip journey tour
hotel lodging accommodation stay
flight ticket booking
luggage suitcase bag baggage
passport visa documents id
map directions route
address location whereabouts
time hour clock
date day
morning am
afternoon pm
evening night
deadline due date cutoff
schedule calendar timetable plan
weekly every week
monthly every month
daily every day
yearly annual every year
recipe cookbook cooking
grocery groceries food supermarket
waste rubbish trash garbage bin bins recycling recycle
energy electricity power gas utility
water plumbing pipes
heating boiler heater
repair maintenance service fix
cleaner cleaning housekeeper
babysitter nanny sitter childcare
pet dog cat animal
vet veterinarian animal clinic
spouse husband wife partner
doctor gp physician medic
color colour colors colours hue shade tint
organize organise organized organised organizing organising
center centre centered centred
gray grey
program programme programs programmes
traveling travelling traveler traveller
favor favour favors favours
behavior behaviour
analyze analyse analysis
catalog catalogue
cheque check
spelling spell orthography british american
flower flowers bouquet blossom blooms roses tulips florist
tree trees shrub hedge bush
yard garden backyard lawn patio
landscaper gardener landscaping
wedding marriage married marry bride groom
engagement engaged fiance fiancee
funeral memorial condolences
baby newborn pregnancy pregnant maternity paternity
christmas xmas holidays holiday festive
easter spring
newyear nye
closure closed shut closing
illness ill sick sickness unwell flu cold fever
nurse nursing
pharmacy pharmacist chemist drugstore
therapy therapist counselor counsellor psychologist
eye eyes optician glasses lenses vision
hair haircut hairdresser barber salon
skin dermatologist rash
back spine physio physiotherapist chiropractor
pain ache headache migraine
blood donor donation transfusion
shoe shoes footwear sneakers boots trainers
shirt shirts blouse top tops
trousers pants jeans
coat jacket raincoat
jewelry jewellery ring necklace earrings
commute commuting cycle cycling bike bicycle tram metro subway
walk walking stroll hike hiking
swim swimming pool lessons
sport sports football soccer tennis hockey
title subject heading headline
subject topic theme
inbox email emails mail correspondence
correspondence letters messages communication
cc copy copied bcc
attachment attachments attach attached enclosed enclosure
link links url urls hyperlink
login log signin sign credentials password account
twofactor 2fa authentication authenticator
website site builder framer squarespace wordpress webflow
logo logos wordmark logotype mark emblem monogram
font fonts typeface typefaces type lettering typography
poster posters print prints artwork
illustration illustrations drawing drawings sketch sketches
animation motion animated
packaging package packages box boxes label labels
bakery baker bakers bread pastry cake cakes
butcher meat
grocer greengrocer vegetables fruit
brewery beer brewer
winery wine vineyard
museum gallery exhibition exhibit
theatre theater stage play
cinema movie movies film films
festival fest celebration event
light lights lighting illumination lamp lamps
charity charities nonprofit nonprofits foundation ngo cause causes
volunteer volunteering
donate donation donations give giving
discount cheaper reduced reduction cheap affordable
expensive pricey costly
teach teaching teacher course lessons tutorial class workshop
learn learning study studying
video videos recording recordings footage
record recorded recording
zine magazine magazines booklet publication
newspaper press journalist article interview
phone mobile provider carrier sim network telecom
electricity power energy electric utility utilities gas
water plumbing
heating boiler radiator thermostat
meter reading readings
storage unit warehouse depot locker
archive archived archives old previous former
computer laptop macbook pc desktop spare
drawer cupboard shelf cabinet
courier delivery deliver shipping shipment transport transports movers
insured insurance
fragile careful delicate
frame framed framing
coworking cowork shared desk office workspace
visitor visitors guests guest host hosting
meeting room boardroom
reception lobby front
translator translation translate interpreter
japanese japan tokyo
french france
german germany
dutch netherlands holland
wage wages salary pay paid payroll payday
day date
morning mornings am early
noon midday lunchtime
afternoon pm
earliest earlier before
latest later after
week weeks weekly seven days
fortnight biweekly
digest recap summary roundup newsletter
friday fridays
monday mondays
tuesday tuesdays
wednesday wednesdays midweek
thursday thursdays
saturday saturdays
sunday sundays
january jan
february feb
march mar
april apr
june jun
july jul
august aug
september sept sep
october oct
november nov
december dec
mom mum mother mama
dad father papa
grandmother grandma granny
grandfather grandpa
aunt uncle cousin niece nephew
child children kids kid daughter son toddler
teenager teen teens
friend friends mate
neighbour neighbor neighbours neighbors
boss client employer
include included including add added cc
exclude excluded leave left omit
accept accepts accepted take takes taking
decline declines declined refuse turn reject
request requests ask asks asked inquiry enquiry
small little minor tiny
commission commissions job jobs gig project assignment
provider supplier vendor company
switch switched change changed move moved
contract plan subscription
old previous former prior
new recent latest current
keep kept retain retained hold
backup spare reserve extra
admin administration paperwork bookkeeping
set aside reserved blocked free
naming names name named convention conventions filename filenames
version versions v1 v2 draft
sort sorted order ordered
currency currencies eur euro euros cad usd dollar dollars
estimate estimates quote quotes quotation proposal
mixup mistake error confusion
explicit explicitly state stated clearly
netherlands dutch holland amsterdam rotterdam utrecht hague haarlem
belgium belgian brussels antwerp ghent
france french paris lyon marseille
germany german berlin munich hamburg frankfurt
britain british uk england english london manchester
ireland irish dublin
spain spanish madrid barcelona
italy italian rome milan
portugal portuguese lisbon porto
japan japanese tokyo osaka kyoto
china chinese beijing shanghai
canada canadian toronto montreal vancouver quebec ottawa
usa america american york california
australia australian sydney melbourne
diet dietary vegetarian vegan restriction restrictions
status progress update updates report reports
emoji emojis smiley smileys emoticon emoticons
signature signoff closing valediction regards
help assist assistant assistance support helper aid
big large huge oversized
sign signs signage poster posters banner banners billboard
print printing printer printed produce production
babysitter babysit babysits babysitting nanny sitter childcare
midweek wednesday
company business firm studio agency
advance upfront deposit prepayment prepay
city town village
country nation abroad overseas foreign
""".strip().splitlines()

_STEMMER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _stemmer() -> sqlite3.Connection:
    # The index's own tokenizer, so that "closing" and "close" meet here exactly when they meet in a search.
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE VIRTUAL TABLE w USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(w, 'instance')")
    return conn


def stems(items: list[str]) -> list[str]:
    """The FTS5 porter stem of each word (its first token; "" when it has none)."""
    return [min(found, key=found.get) if found else "" for found in _tokens(items)]  # type: ignore[arg-type]


def token_stems(texts: list[str]) -> list[set[str]]:
    """The set of FTS5 porter stems in each text."""
    return [set(found) for found in _tokens(texts)]


def _tokens(texts: list[str]) -> list[dict[str, int]]:
    out: list[dict[str, int]] = [{} for _ in texts]
    with _STEMMER_LOCK:
        conn = _stemmer()
        conn.execute("DELETE FROM w")
        conn.executemany("INSERT INTO w(rowid, x) VALUES (?, ?)", [(i + 1, t) for i, t in enumerate(texts)])
        for term, doc, offset in conn.execute("SELECT term, doc, offset FROM v"):
            out[doc - 1].setdefault(term, offset)
    return out


def fold(word: str) -> str:
    """Lowercase without accents: how query words and table words are compared."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _index() -> dict[str, tuple[tuple[str, str], ...]]:
    """stem -> (word, stem) of every member of every group that holds a word with that stem."""
    groups = [line.split() for line in GROUPS]
    flat = stems([w for g in groups for w in g])  # one tokenizer pass for the whole table
    by_stem: dict[str, dict[tuple[str, str], None]] = {}
    at = 0
    for g in groups:
        members = list(zip(g, flat[at:at + len(g)]))
        at += len(g)
        for _, k in members:
            bucket = by_stem.setdefault(k, {})
            for member in members:
                bucket[member] = None
    return {k: tuple(v) for k, v in by_stem.items()}


def related(stem: str) -> list[tuple[str, str]]:
    """(word, stem) of the groups that hold a word with this stem, except words with the same stem."""
    return [(w, k) for w, k in _index().get(stem, ()) if k != stem]


_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))
