## Digilent Arty A7-35 (XC7A35T-1CSG324L), 100 MHz oscillator.
## Ports of shiftkit's board top (hw/src/board/top.rs, module shiftkit_board_arty_a7_35).
## Pins from Digilent's Arty-A7-35-Master.xdc (Digilent/digilent-xdc): CLK100MHZ E3,
## ck_rst C2 (red RESET button, active low), uart_txd_in A9 (FPGA input),
## uart_rxd_out D10 (FPGA output), LD4..LD7 = H5, J5, T9, T10 (active high).

## Clock
set_property -dict { PACKAGE_PIN E3 IOSTANDARD LVCMOS33 } [get_ports { clk }]; # CLK100MHZ
create_clock -add -name sys_clk_pin -period 10.00 -waveform {0 5} [get_ports { clk }];

## Reset button ck_rst (active low)
set_property -dict { PACKAGE_PIN C2 IOSTANDARD LVCMOS33 } [get_ports { reset_button_0 }]; # ck_rst

## USB-UART bridge
set_property -dict { PACKAGE_PIN A9 IOSTANDARD LVCMOS33 } [get_ports { uart_rx }]; # uart_txd_in
set_property -dict { PACKAGE_PIN D10 IOSTANDARD LVCMOS33 } [get_ports { uart_tx }]; # uart_rxd_out

## LEDs LD4 (heartbeat), LD5 (busy), LD6 (error)
set_property -dict { PACKAGE_PIN H5 IOSTANDARD LVCMOS33 } [get_ports { led_heartbeat }]; # led[0]
set_property -dict { PACKAGE_PIN J5 IOSTANDARD LVCMOS33 } [get_ports { led_busy }]; # led[1]
set_property -dict { PACKAGE_PIN T9 IOSTANDARD LVCMOS33 } [get_ports { led_error }]; # led[2]

## The button and the UART input are asynchronous (synchronized inside); the LEDs are slow.
set_false_path -from [get_ports { reset_button_0 uart_rx }]
set_false_path -to [get_ports { uart_tx led_heartbeat led_busy led_error }]

## Configuration bank voltage (as in Digilent's board files)
set_property CFGBVS VCCO [current_design]
set_property CONFIG_VOLTAGE 3.3 [current_design]
